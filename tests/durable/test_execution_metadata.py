"""What an execution's management messages and status row carry, on every store
(docs/azure-storage-taskhub.md §4.2, §5.1): a rewind reaches whatever execution is current (its
message names no execution), and CreatedTime is the current execution's ExecutionStarted time."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest
from durable_support import InvokerHost

from funcemu.app import _spec
from funcemu.durable import history as h
from funcemu.durable.activities import ActivityRunner
from funcemu.durable.clock import VirtualClock
from funcemu.durable.engine import Engine
from funcemu.durable.registry import DurableRegistry
from funcemu.durable.store.base import Checkpoint, InstanceState, Message, RuntimeStatus
from funcemu.durable.store.memory import MemoryStore
from funcemu.durable.store.sqlite import SqliteStore
from funcemu.testing.azurite import Azurite

app = df.DFApp()
ATTEMPTS: dict[str, int] = {}


@app.activity_trigger(input_name="key")
def fails_once(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        raise ValueError(f"first try of {key} fails")
    return f"{key} ok"


@app.orchestration_trigger(context_name="context")
def rewind_me(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("fails_once", context.instance_id))


@app.orchestration_trigger(context_name="context")
def hourly_loop(context: df.DurableOrchestrationContext):
    n = context.get_input() or 0
    if n >= 2:
        return n
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    context.continue_as_new(n + 1)


@functools.lru_cache(maxsize=1)
def _specs() -> list[Any]:
    return [_spec(fn) for fn in app.get_functions()]


@pytest.fixture(params=["memory", "sqlite", pytest.param("azure", marks=pytest.mark.azurite)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        yield SqliteStore(tmp_path / "hub.db")
    else:
        from funcemu.durable.store.azure import AzureStore

        azurite: Azurite = request.getfixturevalue("azurite")
        yield AzureStore(azurite.connection_string, "t" + uuid.uuid4().hex[:16])


async def _with_engine(store: Any, body: Any) -> Any:
    await store.open()
    engine_ref: list[Engine] = []
    engine = Engine(store, VirtualClock(auto_skip=True), DurableRegistry(_specs()), "MetaHub",
                    ActivityRunner(InvokerHost(), engine_ref))  # type: ignore[arg-type]
    engine_ref.append(engine)
    await engine.start()
    try:
        return await body(engine)
    finally:
        await engine.stop()
        await store.delete_task_hub()  # the azure hub is a fresh one in the shared Azurite
        await store.close()


async def _finished(engine: Engine, instance_id: str) -> InstanceState:
    state = await engine.wait_for_completion(instance_id, 30)
    assert state is not None and state.runtime_status.is_terminal, state
    return state


def test_the_rewind_message_names_no_execution_and_reaches_the_current_one(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """§5.1: "`OrchestrationInstance.ExecutionId` is null for management messages" (rewind = GenericEvent)."""
    sent: list[Message] = []
    checkpoint = store.checkpoint

    async def recording(cp: Checkpoint) -> None:
        sent.extend(m for m in cp.messages if m.event["EventType"] == h.EventType.GenericEvent)
        await checkpoint(cp)
    monkeypatch.setattr(store, "checkpoint", recording)

    async def body(engine: Engine) -> InstanceState:
        instance_id = await engine.start_new("rewind_me", f"rw-{uuid.uuid4().hex[:8]}", None)
        assert (await _finished(engine, instance_id)).runtime_status == RuntimeStatus.Failed
        await engine.rewind(instance_id, "try again")
        for _ in range(3000):
            state = await engine.get_instance(instance_id)
            if state is not None and state.runtime_status == RuntimeStatus.Completed:
                return state
            await asyncio.sleep(0.01)
        raise AssertionError("the rewound instance never completed")

    done = asyncio.run(_with_engine(store, body))
    assert [(m.event["Data"], m.execution_id) for m in sent] == [("try again", None)]
    assert done.output == f'"{done.instance_id} ok"'


def test_created_time_is_the_current_executions_start(store: Any) -> None:
    """§4.2: Instances `CreatedTime` = ExecutionStartedEvent.Timestamp, rewritten by a new execution
    (the status API's `createdTime` reads it): after two continue-as-new, the third execution's start."""
    async def body(engine: Engine) -> tuple[InstanceState, list[dict[str, Any]], Any]:
        begun = engine.now()
        instance_id = await engine.start_new("hourly_loop", f"loop-{uuid.uuid4().hex[:8]}", None)
        state = await _finished(engine, instance_id)
        return state, await engine.get_history(instance_id), begun

    state, events, begun = asyncio.run(_with_engine(store, body))
    assert state.runtime_status == RuntimeStatus.Completed and state.output == "2"
    [started] = [e for e in events if e["EventType"] == h.EventType.ExecutionStarted]
    assert state.created_time == h.parse_time(started["Timestamp"])
    assert state.created_time >= begun + timedelta(hours=2)


def test_the_continued_as_new_row_already_shows_the_new_start() -> None:
    """The provider's continue-as-new checkpoint holds the new ExecutionStarted, so its row's CreatedTime
    is that event's time (§3.6, §4.2)."""
    from funcemu.durable.orchestrator import Episode
    from funcemu.durable.outcomes import complete_execution

    t0 = h.parse_time("2024-01-01T00:00:00Z")
    now = t0 + timedelta(hours=1)
    state = InstanceState(instance_id="i", name="hourly_loop", execution_id="e1",
                          runtime_status=RuntimeStatus.Running, created_time=t0, last_updated_time=t0)
    cp = Checkpoint("i", None, replace(state))
    episode = Episode(decisions=[], done=True, output=None, failure=None, continue_as_new="1",
                      custom_status=None, completion_id=0, actions=[])
    assert complete_execution(cp, state, None, episode, [], now)
    [start] = cp.messages
    assert cp.state.runtime_status == RuntimeStatus.ContinuedAsNew
    assert cp.state.created_time == now == h.parse_time(start.event["Timestamp"])
