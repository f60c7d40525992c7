"""The engine completes the activities that finish in the same loop turn with one `complete_activities`
call; pacing and wake-ups follow the write, and a failed write is logged, recorded and tried again
until it succeeds, never lost."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import pytest

from funcemu.durable import engine as engine_module
from funcemu.durable import history
from funcemu.durable.clock import VirtualClock
from funcemu.durable.engine import Engine
from funcemu.durable.registry import DurableRegistry
from funcemu.durable.store import ActivityItem, MemoryStore, Message

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


class RecordingStore(MemoryStore):
    """Records each `complete_activities` batch and what the engine had done when it was written."""

    def __init__(self, engine_ref: list[Engine], failures: int = 0) -> None:
        super().__init__()
        self.engine_ref, self.failures = engine_ref, failures
        self.batches: list[list[int]] = []
        self.written: list[list[int]] = []
        self.during_write: list[tuple[int, bool]] = []  # (activities in flight, woken)

    async def complete_activities(self, done: list[tuple[ActivityItem, Message]]) -> None:
        engine = self.engine_ref[0]
        self.batches.append([item.task_id for item, _ in done])
        self.during_write.append((engine.pacer._in_flight.get("a", 0), engine._wake.is_set()))
        await asyncio.sleep(0)  # a store that awaits I/O
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        await super().complete_activities(done)
        self.written.append(self.batches[-1])


def make_engine(failures: int = 0) -> tuple[Engine, RecordingStore, dict[int, asyncio.Event]]:
    gates: dict[int, asyncio.Event] = {}
    engine_ref: list[Engine] = []
    store = RecordingStore(engine_ref, failures)

    async def run_activity(item: ActivityItem) -> Message:
        await gates.setdefault(item.task_id, asyncio.Event()).wait()
        return Message(item.instance_id, history.task_completed(T0, item.task_id, '"ok"'), item.execution_id)

    engine = Engine(store, VirtualClock(auto_skip=False), DurableRegistry([]), "Hub", run_activity)
    engine_ref.append(engine)
    return engine, store, gates


async def start_activities(engine: Engine, gates: dict[int, asyncio.Event], count: int) -> list[asyncio.Task[None]]:
    items = [ActivityItem("a", "e1", n, "say", None, item_id=str(n + 1)) for n in range(count)]
    engine.pacer.scheduled("a", count)
    tasks = [asyncio.ensure_future(engine._run_activity(item)) for item in items]
    for task in tasks:
        engine._running_activities.add(task)
    for n in range(count):
        gates.setdefault(n, asyncio.Event())
    await asyncio.sleep(0)
    engine._wake.clear()
    return tasks


def test_results_of_one_turn_are_written_together() -> None:
    async def body() -> None:
        engine, store, gates = make_engine()
        tasks = await start_activities(engine, gates, 5)
        for n in (0, 1, 2):  # finish in the same turn
            gates[n].set()
        await asyncio.sleep(0.01)
        engine._wake.clear()
        gates[3].set()  # a later turn: a write of its own
        await asyncio.sleep(0.01)
        assert store.batches == [[0, 1, 2], [3]]
        assert store.during_write == [(5, False), (2, False)]  # pacing and wake-ups come after the write
        assert engine.pacer.busy("a") and engine._wake.is_set() and engine._activity_wake.is_set()
        gates[4].set()
        await asyncio.gather(*tasks)
        assert not engine.pacer.busy("a") and not engine._running_activities
        assert store.batches[-1] == [4] and engine.errors == []

    asyncio.run(body())


def test_a_lone_result_is_written_without_waiting_for_a_timer() -> None:
    async def body() -> None:
        engine, store, gates = make_engine()
        [task] = await start_activities(engine, gates, 1)
        gates[0].set()
        for _ in range(10):  # a handful of loop turns, no sleep
            await asyncio.sleep(0)
        assert task.done() and store.batches == [[0]]

    asyncio.run(body())


def test_a_failed_write_is_logged_recorded_and_tried_again(caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "RETRY_FIRST_DELAY", 0.001)

    async def body() -> None:
        engine, store, gates = make_engine(failures=2)
        tasks = await start_activities(engine, gates, 2)
        for gate in gates.values():
            gate.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert store.batches == [[0, 1], [0, 1], [0, 1]]
        assert [type(error) for error in engine.errors] == [OSError, OSError]
        assert not engine.pacer.busy("a") and engine._wake.is_set()
        assert store.written == [[0, 1]]

    with caplog.at_level(logging.WARNING, logger="funcemu.durable"):
        asyncio.run(body())
    assert caplog.text.count("could not write the results of 2 activities (OSError: disk full)") == 2
    assert "could not complete" not in caplog.text


def test_stop_ends_a_write_that_keeps_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "RETRY_FIRST_DELAY", 0.001)

    async def retried(store: RecordingStore) -> None:
        while len(store.batches) < 3:
            await asyncio.sleep(0.001)

    async def body() -> Any:
        engine, store, gates = make_engine(failures=1000)
        tasks = await start_activities(engine, gates, 1)
        gates[0].set()
        await asyncio.wait_for(retried(store), 5)
        await engine.stop()
        assert all(task.done() for task in tasks) and not engine._completion_writes

    asyncio.run(body())


def test_stop_cancels_pending_writes() -> None:
    async def body() -> Any:
        engine, store, gates = make_engine()
        tasks = await start_activities(engine, gates, 2)
        gates[0].set()
        await asyncio.sleep(0)
        await engine.stop()
        assert all(task.done() for task in tasks) and not engine._completion_writes

    asyncio.run(body())
