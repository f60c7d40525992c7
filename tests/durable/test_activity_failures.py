"""Every failure of an activity invocation reaches the orchestration as a TaskFailed, including failures
before the user's function is called (input conversion); the SDKs' own DeprecationWarnings do not
break activities or history replays under warnings-as-errors; an unknown activity's failure reads cleanly."""

from __future__ import annotations

import asyncio
import functools
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions._durable_functions as sdk_codec
import pytest
from azure.functions.durable_functions import ActivityTriggerConverter
from durable_support import InvokerHost

from funcemu.app import _spec
from funcemu.durable.activities import ActivityRunner
from funcemu.durable.clock import VirtualClock
from funcemu.durable.engine import Engine
from funcemu.durable.registry import DurableRegistry
from funcemu.durable.store.base import ActivityItem, InstanceState, Message, RuntimeStatus
from funcemu.durable.store.memory import MemoryStore
from funcemu.testing.replay import replay_history

APPS = Path(__file__).parent / "apps"
app = df.DFApp()
CALLS: list[Any] = []


@app.activity_trigger(input_name="value")
def echo(value: object) -> object:  # not Any: before 3.11 it is no type, and the worker refuses it
    CALLS.append(value)
    return value


@app.orchestration_trigger(context_name="context")
def calls_echo(context: df.DurableOrchestrationContext):
    try:
        return {"ok": (yield context.call_activity("echo", {"n": 1}))}
    except Exception as exc:
        return {"caught": str(exc)}


@app.orchestration_trigger(context_name="context")
def echoes_its_input(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("echo", context.get_input()))


@app.orchestration_trigger(context_name="context")
def calls_missing(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("helo", 1)
    except Exception as exc:
        return {"caught": str(exc)}
    return "not caught"


@app.orchestration_trigger(context_name="context")
def calls_missing_uncaught(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("helo", 1))


@functools.lru_cache(maxsize=1)
def _specs() -> list[Any]:
    return [_spec(fn) for fn in app.get_functions()]  # the SDK indexes an app once


async def _broken_runner(item: ActivityItem) -> Message:
    raise RuntimeError(f"the runner broke on {item.name}")


def run(orchestrator: str, *, broken_runner: bool = False, input_text: str | None = None
        ) -> tuple[InstanceState, Engine]:
    """Start `orchestrator` on an engine over the memory store; its terminal state (it must not hang)."""

    async def main() -> tuple[InstanceState, Engine]:
        store = MemoryStore()
        await store.open()
        engine_ref: list[Engine] = []
        runner: Any = _broken_runner if broken_runner else ActivityRunner(InvokerHost(), engine_ref)  # type: ignore[arg-type]
        engine = Engine(store, VirtualClock(auto_skip=True), DurableRegistry(_specs()), "FailHub", runner)
        engine_ref.append(engine)
        await engine.start()
        try:
            instance_id = await engine.start_new(orchestrator, None, input_text)
            state = await engine.wait_for_completion(instance_id, 10)
            assert state is not None and state.runtime_status.is_terminal, f"{orchestrator} hangs: {state}"
            return state, engine
        finally:
            await engine.stop()
            await store.close()

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def fresh_sdk_notices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The SDK warns once per process; each test starts as a fresh process would."""
    monkeypatch.setattr(sdk_codec, "_no_expected_type_notice_emitted", False)
    monkeypatch.setattr(sdk_codec, "_loose_codec_notice_emitted", False)
    CALLS.clear()
    yield


def test_a_failure_converting_the_input_fails_the_task_instead_of_hanging(monkeypatch: pytest.MonkeyPatch,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    def decode(data: Any, *, trigger_metadata: Any) -> Any:
        raise ValueError(f"activity trigger input must be a string or a valid json serializable ({data.value})")

    monkeypatch.setattr(ActivityTriggerConverter, "decode", decode)

    state, engine = run("calls_echo")

    assert state.runtime_status == RuntimeStatus.Completed
    caught = json.loads(state.output or "")["caught"]
    assert caught.startswith("Activity function 'echo' failed:  ValueError: activity trigger input must be a "
                             'string or a valid json serializable ({"n": 1}) \n {')
    assert json.loads(caught.split(" \n ", 1)[1])["Message"] == (
        ' ValueError: activity trigger input must be a string or a valid json serializable ({"n": 1})')
    assert CALLS == [] and engine.errors == []
    logged = [r for r in caplog.records if "failed before it was called" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


def test_any_exception_from_the_activity_runner_fails_the_task() -> None:
    state, engine = run("calls_echo", broken_runner=True)

    assert state.runtime_status == RuntimeStatus.Completed
    caught = json.loads(state.output or "")["caught"]
    assert caught.startswith("Activity function 'echo' failed:  RuntimeError: the runner broke on echo \n {")
    assert engine.errors == []


def test_activities_run_with_the_sdks_deprecations_turned_into_errors() -> None:
    """PYTHONWARNINGS=error: the SDK's `df_loads was called without expected_type` must not fail the input."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state, _ = run("calls_echo")

    assert state.runtime_status == RuntimeStatus.Completed
    assert json.loads(state.output or "") == {"ok": {"n": 1}}
    assert CALLS == [{"n": 1}]


def test_orchestrators_run_with_the_sdks_deprecations_turned_into_errors() -> None:
    """The same for the handler: `context.get_input()` goes through df_loads without expected_type."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state, _ = run("echoes_its_input", input_text=json.dumps(json.dumps({"n": 2})))

    assert state.runtime_status == RuntimeStatus.Completed, state.output
    assert json.loads(state.output or "") == {"n": 2}


def test_the_users_own_deprecation_warnings_are_not_hidden() -> None:
    def users_code() -> None:
        warnings.warn("the user's own deprecation", DeprecationWarning, stacklevel=1)

    from funcemu.durable.orchestrator import sdk_deprecations_ignored

    with warnings.catch_warnings(), sdk_deprecations_ignored():
        warnings.simplefilter("error")
        with pytest.raises(DeprecationWarning, match="the user's own deprecation"):
            users_code()


def test_an_unknown_activity_fails_its_task_with_a_clean_message() -> None:
    state, _ = run("calls_missing")

    assert state.runtime_status == RuntimeStatus.Completed
    caught = json.loads(state.output or "")["caught"]
    # the SDK's "{Reason} \n {Details}" with empty Details: no stray "None"
    assert caught == ("The function 'helo' doesn't exist, is disabled, or is not an activity function. "
                      "Additional info: The following are the known activity functions: 'echo'. \n ")


def test_an_uncaught_unknown_activity_fails_the_orchestration_without_a_stray_none() -> None:
    state, _ = run("calls_missing_uncaught")

    assert state.runtime_status == RuntimeStatus.Failed
    assert state.output == ("Orchestrator function 'calls_missing_uncaught' failed: The function 'helo' doesn't "
                            "exist, is disabled, or is not an activity function. Additional info: The following "
                            "are the known activity functions: 'echo'. \n ")


@pytest.mark.parametrize("action", ["error", "always"])
def test_a_history_replays_cleanly_with_warnings_as_errors(action: Any) -> None:
    """`pytest -W error` / `filterwarnings = error` in the user's project: no false divergence, and with
    warnings shown the SDK's own deprecations do not reach the user's warnings summary."""
    inner = json.dumps({"item": "lamp", "holdHours": 1, "lines": [{"quantity": 2, "unitPrice": 2.5}]})
    rows = [
        {"EventType": "ExecutionStarted", "FunctionName": "order_flow", "Input": json.dumps(inner),
         "Timestamp": "2024-05-01T10:00:00Z"},
        {"EventType": "TaskCompleted", "Result": "reservation-lamp", "ScheduledTime": "2024-05-01T10:00:01Z",
         "FunctionName": "reserve", "Input": json.dumps(['"lamp"']), "Timestamp": "2024-05-01T10:00:02Z"},
        {"EventType": "TaskCompleted", "Result": 5.0, "ScheduledTime": "2024-05-01T10:00:03Z",
         "FunctionName": "price", "Input": json.dumps([json.dumps({"quantity": 2, "unitPrice": 2.5})]),
         "Timestamp": "2024-05-01T10:00:04Z"},
        {"EventType": "TimerCreated", "FireAt": "2024-05-01T11:00:04Z", "Timestamp": "2024-05-01T10:00:04Z"},
        {"EventType": "TimerFired", "FireAt": "2024-05-01T11:00:04Z", "Timestamp": "2024-05-01T11:00:05Z"},
        {"EventType": "ExecutionCompleted", "OrchestrationStatus": "Completed",
         "Result": {"reservation": "reservation-lamp", "total": 5.0, "receipt": None},
         "Timestamp": "2024-05-01T11:00:06Z"},
    ]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter(action)
        report = replay_history(APPS / "replay_v1", {"historyEvents": rows})

    assert report.ok, str(report)
    assert [str(w.message) for w in caught] == []
