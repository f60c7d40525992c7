"""The engine's per-episode shortcuts change nothing the SDK or the store sees: the handler's document
is built incrementally from the played JSON of the history (byte for byte the document built from the
whole history), and a store that declares `reusable_history` is not read again while the instance's
etag is the one the last checkpoint returned (the cached history equals the stored one)."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest
from durable_support import InvokerHost

from funcemu.app import _spec
from funcemu.durable import episodes as episodes_module
from funcemu.durable import history as h
from funcemu.durable.clock import VirtualClock
from funcemu.durable.engine import Engine
from funcemu.durable.episodes import Episodes, _Histories, _Known
from funcemu.durable.orchestrator import PlayedText, _document, _started_event, context_document, run_episode
from funcemu.durable.registry import DurableRegistry
from funcemu.durable.store.base import InstanceState, RuntimeStatus
from funcemu.durable.store.memory import MemoryStore
from funcemu.durable.store.sqlite import SqliteStore
from funcemu.invoke import new_invocation_id

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
app = df.DFApp()
ATTEMPTS: dict[str, int] = {}


@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    return f"Hello {name} ☃"


@app.activity_trigger(input_name="key")
def fails_once(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        raise ValueError(f"first try of {key} fails")
    return f"{key} ok"


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    results = []
    for city in context.get_input() or ["Tokyo", "Zürich"]:
        results.append((yield context.call_activity("hello", city)))
        context.set_custom_status({"done": len(results)})
    return results


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    results = yield context.task_all([context.call_activity("hello", str(i)) for i in range(6)])
    return results


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    event = context.wait_for_external_event("Approval")
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return {"approved": event.result}
    return "timed out"


@app.orchestration_trigger(context_name="context")
def timers(context: df.DurableOrchestrationContext):
    for minutes in (1, 2):
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=minutes))
    return (yield context.call_activity("hello", "after timers"))


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    first = yield context.call_sub_orchestrator("chain", ["A", "B"])
    second = yield context.call_sub_orchestrator("chain", ["C"], f"{context.instance_id}-named")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def counter_loop(context: df.DurableOrchestrationContext):
    n = context.get_input() or 0
    if n >= 3:
        return n
    yield context.call_activity("hello", str(n))
    context.continue_as_new(n + 1)


@app.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    return (yield context.call_activity_with_retry("fails_once", options, context.instance_id))


@app.orchestration_trigger(context_name="context")
def rewindable(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("hello", "before")
    second = yield context.call_activity("fails_once", context.instance_id)
    return [first, second]


@app.orchestration_trigger(context_name="context")
def waits(context: df.DurableOrchestrationContext):
    first = yield context.wait_for_external_event("Go")
    second = yield context.call_activity("hello", first)
    return second


class Checks:
    """Wraps the engine's episode steps: every document is compared with the one built from the whole
    history, every history the engine used with the stored one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Any) -> None:
        self.documents = 0
        self.cached = 0
        self.reads = 0
        real_run_episode = episodes_module.run_episode
        real_current = Episodes._current_execution
        real_get_history = store.get_history
        checks = self

        def run_checked(handler: Callable[[str], str], **kwargs: Any) -> Any:
            past, new = kwargs["past"], kwargs["new"]
            history = h.played(past) + list(new)
            started = next(e for e in history if e["EventType"] == h.EventType.ExecutionStarted)
            expected = context_document(history, kwargs["instance_id"], kwargs.get("parent_instance_id"), started)

            def handler_checked(document: str) -> str:
                assert document == expected
                checks.documents += 1
                return handler(document)

            return real_run_episode(handler_checked, **kwargs)

        async def current_checked(self: Episodes, instance_id: str, state: Any, messages: Any) -> Any:
            reads = checks.reads
            state, past = await real_current(self, instance_id, state, messages)
            if state is not None and past:
                assert past == await real_get_history(instance_id)  # uncounted
                checks.cached += checks.reads == reads
            return state, past

        async def counted_get_history(instance_id: str) -> list[dict[str, Any]]:
            checks.reads += 1
            return await real_get_history(instance_id)

        monkeypatch.setattr(episodes_module, "run_episode", run_checked)
        monkeypatch.setattr(Episodes, "_current_execution", current_checked)
        monkeypatch.setattr(store, "get_history", counted_get_history)


@functools.lru_cache(maxsize=1)
def _specs() -> list[Any]:
    return [_spec(fn) for fn in app.get_functions()]  # the SDK indexes an app once


def _engine(store: Any) -> Engine:
    from funcemu.durable.activities import ActivityRunner

    specs = _specs()
    engine_ref: list[Engine] = []
    engine = Engine(store, VirtualClock(auto_skip=True), DurableRegistry(specs), "CacheHub",
                    ActivityRunner(InvokerHost(), engine_ref))  # type: ignore[arg-type]
    engine_ref.append(engine)
    return engine


async def _finish(engine: Engine, instance_id: str) -> InstanceState:
    state = await engine.wait_for_completion(instance_id, 20)
    assert state is not None and state.runtime_status.is_terminal, state
    return state


async def _until(engine: Engine, instance_id: str, check: Callable[[InstanceState], bool]) -> None:
    for _ in range(2000):
        state = await engine.get_instance(instance_id)
        if state is not None and check(state):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{instance_id} never got there")


def _text(value: Any) -> str:
    return json.dumps(json.dumps(value))  # the Python client's stored input: a JSON string of JSON text


async def _scenarios(engine: Engine) -> dict[str, InstanceState]:
    results: dict[str, InstanceState] = {}
    simple = {"chain": ["Tokyo", "Zürich", "Lima"], "fan_out": None, "timers": None, "parent": None,
              "counter_loop": 0, "with_retry": None}
    ids = {name: await engine.start_new(name, f"{name}-1", _text(value) if value is not None else None)
           for name, value in simple.items()}
    for name, instance_id in ids.items():
        results[name] = await _finish(engine, instance_id)

    clock = engine.clock
    assert isinstance(clock, VirtualClock)
    clock.auto_skip = False  # the hour-long timer must not fire before the test raises its events
    approved = await engine.start_new("approval", "approval-1", None)
    await _until(engine, approved, lambda s: s.runtime_status == RuntimeStatus.Running)
    await engine.raise_event(approved, "Approval", json.dumps("yes ✓"))
    results["approval"] = await _finish(engine, approved)

    suspended = await engine.start_new("waits", "waits-1", None)
    await _until(engine, suspended, lambda s: s.runtime_status == RuntimeStatus.Running)
    await engine.suspend(suspended, "hold on")
    await _until(engine, suspended, lambda s: s.runtime_status == RuntimeStatus.Suspended)
    await engine.raise_event(suspended, "Go", json.dumps("while suspended"))
    await engine.resume(suspended, "go on")
    results["waits"] = await _finish(engine, suspended)

    terminated = await engine.start_new("waits", "waits-2", None)
    await _until(engine, terminated, lambda s: s.runtime_status == RuntimeStatus.Running)
    await engine.terminate(terminated, "enough")
    results["terminated"] = await _finish(engine, terminated)

    clock.auto_skip = True
    rewound = await engine.start_new("rewindable", "rewindable-1", None)
    assert (await _finish(engine, rewound)).runtime_status == RuntimeStatus.Failed
    await engine.rewind(rewound, "try again")
    await _until(engine, rewound, lambda s: s.runtime_status == RuntimeStatus.Completed)
    results["rewindable"] = await _finish(engine, rewound)

    restarted = await engine.start_new("chain", "chain-1", _text(["again"]))  # the same id, a new execution
    results["restarted"] = await _finish(engine, restarted)
    return results


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    cls = MemoryStore if request.param == "memory" else SqliteStore
    monkeypatch.setattr(cls, "reusable_history", True, raising=False)
    yield MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "hub.db")


def test_documents_and_histories_match_the_uncached_ones(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ATTEMPTS.clear()
    checks = Checks(monkeypatch, store)

    async def main() -> dict[str, InstanceState]:
        await store.open()
        engine = _engine(store)
        await engine.start()
        try:
            return await _scenarios(engine)
        finally:
            await engine.stop()
            await store.close()

    results = asyncio.run(main())
    statuses = {name: state.runtime_status.value for name, state in results.items()}
    assert statuses == {"chain": "Completed", "fan_out": "Completed", "timers": "Completed",
                        "parent": "Completed", "counter_loop": "Completed", "with_retry": "Completed",
                        "approval": "Completed", "waits": "Completed", "terminated": "Terminated",
                        "rewindable": "Completed", "restarted": "Completed"}
    assert json.loads(results["chain"].output or "") == ["Hello Tokyo ☃", "Hello Zürich ☃", "Hello Lima ☃"]
    assert json.loads(results["approval"].output or "") == {"approved": "yes ✓"}
    assert json.loads(results["waits"].output or "") == "Hello while suspended ☃"
    assert checks.documents > 40
    assert checks.cached > 20  # most episodes ran on the cached history


def test_a_store_without_reusable_history_is_read_every_episode(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    monkeypatch.delattr(MemoryStore, "reusable_history", raising=False)
    checks = Checks(monkeypatch, store)

    async def main() -> InstanceState:
        engine = _engine(store)
        await engine.start()
        try:
            return await _finish(engine, await engine.start_new("chain", None, _text(["a", "b", "c"])))
        finally:
            await engine.stop()

    assert asyncio.run(main()).runtime_status == RuntimeStatus.Completed
    assert checks.documents == 4 and checks.cached == 0 and checks.reads >= 3


# -- the document, built incrementally ----------------------------------------------------------------

def _histories() -> list[tuple[list[h.Event], str | None]]:
    """(history, parent instance id) pairs of several shapes, each cut into episodes below."""
    start = h.execution_started(T0, "o", "i", "e", json.dumps(json.dumps({"k": "Zürich ☃", "n": [1, 2.5]})))
    child = h.execution_started(T0, "o", "i:0", "e2", None,
                                parent={"Name": "p", "Version": "", "TaskScheduleId": 0,
                                        "OrchestrationInstance": {"InstanceId": "p", "ExecutionId": "pe"}})
    t1 = T0 + timedelta(seconds=1)
    chain = [h.orchestrator_started(T0), start, h.task_scheduled(T0, 0, "a", '"x"'), h.orchestrator_completed(T0),
             h.orchestrator_started(t1), h.task_completed(t1, 0, '"ü"'), h.task_scheduled(t1, 1, "a", None),
             h.orchestrator_completed(t1), h.orchestrator_started(t1), h.task_failed(t1, 1, "r", "d"),
             h.execution_completed(t1, 2, 3, "failed", {"ErrorMessage": "x"}), h.orchestrator_completed(t1)]
    timers = [h.orchestrator_started(T0), child, h.timer_created(T0, 0, t1), h.event_sent(T0, 1, "@c@k", "op", "{}"),
              h.orchestrator_completed(T0), h.orchestrator_started(t1), h.timer_fired(t1, 0, t1),
              h.event_raised(t1, "E", None), h.execution_suspended(t1, "s"), h.execution_resumed(t1, None),
              h.sub_orchestration_created(t1, 2, "c", "i:2", None), h.orchestrator_completed(t1),
              h.orchestrator_started(t1), h.sub_orchestration_completed(t1, 2, "1"), h.generic_event(t1, "rewound"),
              h.execution_terminated(t1, "t")]
    return [(chain, None), (timers, "p"), ([h.orchestrator_started(T0), start], None)]


@pytest.mark.parametrize("index", range(3))
def test_the_incremental_document_is_the_whole_document(index: int) -> None:
    history, parent_id = _histories()[index]
    cuts = [i for i, e in enumerate(history) if e["EventType"] == h.EventType.OrchestratorStarted] + [len(history)]
    kept = PlayedText()
    for cut in range(len(history) + 1):
        past, new = history[:cut], history[cut:cut + 3]
        if not any(e["EventType"] == h.EventType.ExecutionStarted for e in past + new):
            continue
        whole = h.played(past) + new
        started = next(e for e in whole if e["EventType"] == h.EventType.ExecutionStarted)
        expected = context_document(whole, "i", parent_id, started)
        fresh = PlayedText()
        fresh.extend(past)
        if cut in cuts:  # the kept text is extended episode by episode, as the engine does
            kept.extend(past)
            assert _document(kept, new, "i", parent_id, *_started_event(past, new)) == expected
        assert _document(fresh, new, "i", parent_id, *_started_event(past, new)) == expected
        assert json.loads(expected)["isReplaying"] == (started not in new)


def test_a_played_text_starts_over_for_a_shorter_history() -> None:
    history = _histories()[0][0]
    text = PlayedText()
    text.extend(history)
    text.extend(history[:2])
    assert text.count == 2 and ", ".join(text.chunks) == json.dumps(h.played(history[:2]))[1:-1]


def test_run_episode_passes_the_same_document_with_and_without_a_played_text() -> None:
    seen: list[str] = []

    def handler(document: str) -> str:
        seen.append(document)
        return json.dumps({"isDone": False, "schemaVersion": 2, "actions": [[]]})

    history = _histories()[0][0]
    kept = PlayedText()
    for played_text in (None, kept, kept):
        run_episode(handler, name="o", instance_id="i", past=history[:4], new=history[4:6], now=T0,
                    played_text=played_text)
    assert seen[0] == seen[1] == seen[2] and kept.count == 4


# -- the history cache ---------------------------------------------------------------------------------

def _state(instance_id: str, etag: Any, execution_id: str = "e") -> InstanceState:
    state = InstanceState(instance_id, "o", execution_id, RuntimeStatus.Running, T0, T0)
    state.etag = etag
    return state


def test_the_cache_answers_only_for_the_same_etag_and_execution() -> None:
    cache = _Histories()
    events = [h.orchestrator_started(T0)]
    cache.put("a", _Known(7, "e", events, PlayedText()))
    assert cache.get(_state("a", 7)) is not None
    assert cache.get(_state("a", 8)) is None
    assert cache.get(_state("a", 7, "other execution")) is None
    assert cache.text_for("a", events) is cache.get(_state("a", 7)).text  # type: ignore[union-attr]
    assert cache.text_for("a", list(events)) is not cache.text_for("a", events)
    cache.put("b", _Known(None, "e", events, PlayedText()))  # no etag: nothing to compare with
    assert len(cache) == 1
    cache.drop("a")
    assert cache.get(_state("a", 7)) is None and len(cache) == 0


def test_the_cache_is_bounded_by_instances_and_events() -> None:
    cache = _Histories(max_instances=3, max_events=10)
    for n in range(5):
        cache.put(str(n), _Known(n, "e", [{}] * 2, PlayedText()))
    assert [cache.get(_state(str(n), n)) is not None for n in range(5)] == [False, False, True, True, True]
    cache.put("big", _Known(9, "e", [{}] * 9, PlayedText()))
    assert len(cache) == 1 and cache.get(_state("big", 9)) is not None
    cache.put("huge", _Known(10, "e", [{}] * 11, PlayedText()))  # larger than the bound: not kept
    assert cache.get(_state("huge", 10)) is None and len(cache) == 1
    assert cache._events == 9


def test_a_lost_race_reads_the_history_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MemoryStore, "reusable_history", True, raising=False)
    store = MemoryStore()
    checks = Checks(monkeypatch, store)

    async def main() -> tuple[bool, bool]:
        engine = _engine(store)
        instance_id = await engine.start_new("waits", None, None)
        await engine.episodes.run(instance_id)  # the first episode: waits for "Go"
        state = await store.get_instance(instance_id)
        assert state is not None and checks.reads == 0
        cached_before = engine.episodes.histories.get(state) is not None
        # Another writer moves the etag under the episode: its checkpoint loses the race.
        real_checkpoint = store.checkpoint

        async def racing(cp: Any) -> None:
            stale = await store.get_instance(instance_id)
            assert stale is not None
            await real_checkpoint(type(cp)(instance_id=instance_id, etag=stale.etag, state=stale))
            store.checkpoint = real_checkpoint  # type: ignore[method-assign]
            await real_checkpoint(cp)

        store.checkpoint = racing  # type: ignore[method-assign]
        await engine.raise_event(instance_id, "Go", json.dumps("x"))
        await engine.episodes.run(instance_id)
        state = await store.get_instance(instance_id)
        assert state is not None
        return cached_before, engine.episodes.histories.get(state) is not None

    cached_before, cached_after = asyncio.run(main())
    assert cached_before and cached_after and checks.documents == 3  # the first, the lost one, its replay
    assert checks.reads == 1 and checks.cached == 1  # the replay read the history the other writer left


# -- small pieces ----------------------------------------------------------------------------------------

def _format_time_before(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    return text + "Z"


@pytest.mark.parametrize("value", [
    T0, T0 + timedelta(microseconds=1), T0 + timedelta(microseconds=120000), datetime(2024, 5, 1, 3, 4, 5, 999999),
    datetime(1, 1, 1, tzinfo=timezone.utc), datetime(999, 12, 31, 23, 59, 59, 5, tzinfo=timezone.utc),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
    datetime(2024, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
])
def test_format_time_is_unchanged(value: datetime) -> None:
    assert h.format_time(value) == h.format_time(value) == _format_time_before(value)


def test_parse_time_gives_equal_aware_times() -> None:
    assert h.parse_time("2024-01-01T00:00:00.1234567Z") == datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
    assert h.parse_time("2024-01-01T02:00:00+02:00") == T0
    with pytest.raises(ValueError):
        h.parse_time("not a time")


def test_invocation_ids_look_like_uuid4() -> None:
    ids = {new_invocation_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in list(ids)[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
