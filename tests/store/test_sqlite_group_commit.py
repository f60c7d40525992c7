"""SqliteStore's write path: the writes of one loop turn share one transaction (group commit), yet each
lands whole or not at all; the cached etag counter and watermark follow other connections; schema
version 1 files are upgraded; the WAL is checkpointed by the store's own thread."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from funcemu.durable import history
from funcemu.durable.store import (
    ActivityItem,
    Checkpoint,
    InstanceState,
    Message,
    RuntimeStatus,
    SqliteStore,
    StaleCheckpointError,
)
from funcemu.durable.store import sqlite as sqlite_module

T = TypeVar("T")
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "hub.sqlite3"


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


@pytest.fixture
def store(path: Path, run: Callable[[Awaitable[Any]], Any]) -> Iterator[SqliteStore]:
    opened = SqliteStore(path)
    run(opened.open())
    yield opened
    run(opened.close())


def state(instance_id: str) -> InstanceState:
    return InstanceState(instance_id, "hello", "e1", RuntimeStatus.Pending, T0, T0)


def start(instance_id: str) -> Message:
    return Message(instance_id, history.execution_started(T0, "hello", instance_id, "e1", None), "e1")


def raised(instance_id: str, name: str = "e", **fields: Any) -> Message:
    return Message(instance_id, {**history.event_raised(T0, name, None), **fields})


def unserializable(instance_id: str) -> Message:
    return raised(instance_id, "bad", Input=object())  # json cannot encode it: the write fails midway


async def run_checkpoint(store: SqliteStore, instance_id: str, **fields: Any) -> Checkpoint:
    current = await store.get_instance(instance_id)
    assert current is not None
    cp = Checkpoint(instance_id, current.etag, dataclasses.replace(current, runtime_status=RuntimeStatus.Running),
                    consumed=await store.pending_messages(instance_id, T0), new_events=history.episode(T0),
                    **fields)
    await store.checkpoint(cp)
    return cp


def count_transactions(store: SqliteStore) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(lambda sql: seen.append(sql) if sql.startswith("BEGIN") else None)
    return seen


def committed(path: Path, sql: str) -> list[Any]:
    """What another connection sees: only committed data."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def test_writes_of_one_turn_share_one_transaction(store: SqliteStore, path: Path,
                                                   run: Callable[[Awaitable[Any]], Any]) -> None:
    async def body() -> None:
        await store.create_instance(state("a"), start("a"))
        transactions = count_transactions(store)
        await asyncio.gather(*(store.create_instance(state(f"i{n}"), start(f"i{n}")) for n in range(10)),
                             run_checkpoint(store, "a", activities=[ActivityItem("a", "e1", 0, "say", None)]),
                             store.send_messages([raised("x")]))
        assert len(transactions) == 1
        assert len(committed(path, "SELECT * FROM instances")) == 11
        assert [item.task_id for item in await store.fetch_activities(10)] == [0]
        etags = [s.etag for s in (await store.query_instances(sqlite_module.InstanceQuery()))[0]]
        assert len(set(etags)) == 11

    run(body())


def test_a_lone_write_commits_in_the_next_loop_turn(store: SqliteStore, run: Callable[[Awaitable[Any]], Any]) -> None:
    async def body() -> None:
        task = asyncio.ensure_future(store.send_messages([raised("x")]))
        for _ in range(3):  # the task queues its write, the loop commits it, the task resumes
            await asyncio.sleep(0)
        assert task.done() and task.exception() is None

    run(body())


def test_a_stale_checkpoint_fails_alone(store: SqliteStore, path: Path, run: Callable[[Awaitable[Any]], Any]) -> None:
    async def body() -> None:
        await store.create_instance(state("a"), start("a"))
        old = await store.get_instance("a")
        assert old is not None
        await run_checkpoint(store, "a")
        stale = Checkpoint("a", old.etag, dataclasses.replace(old, output='"lost"'), new_events=history.episode(T0),
                           messages=[raised("b", "lost")], activities=[ActivityItem("a", "e1", 7, "say", None)])
        results = await asyncio.gather(store.checkpoint(stale), store.send_messages([raised("b", "kept")]),
                                       return_exceptions=True)
        assert isinstance(results[0], StaleCheckpointError) and results[1] is None
        assert stale.state.etag == old.etag
        assert [m.event["Name"] for m in await store.pending_messages("b", T0)] == ["kept"]
        assert await store.fetch_activities(10) == []
        assert len(await store.get_history("a")) == 2

    run(body())


def test_a_failing_write_leaves_nothing_and_the_others_commit(store: SqliteStore,
                                                              run: Callable[[Awaitable[Any]], Any]) -> None:
    async def body() -> None:
        results = await asyncio.gather(store.send_messages([raised("a", "first"), unserializable("a")]),
                                       store.send_messages([raised("b", "kept")]),
                                       store.create_instance(state("c"), start("c")), return_exceptions=True)
        assert isinstance(results[0], TypeError) and results[1:] == [None, None]
        assert await store.pending_messages("a", T0) == []
        assert await store.ready_instances(T0, 10) == ["b", "c"]
        await store.send_messages([unserializable("a")])  # alone in its transaction

    with pytest.raises(TypeError):
        run(body())
    run(store.send_messages([raised("a", "later")]))  # the store is still usable
    assert [m.event["Name"] for m in run(store.pending_messages("a", T0))] == ["later"]


def test_complete_activities_is_atomic(store: SqliteStore, run: Callable[[Awaitable[Any]], Any]) -> None:
    async def body() -> None:
        await store.create_instance(state("a"), start("a"))
        await run_checkpoint(store, "a", activities=[ActivityItem("a", "e1", i, "say", None) for i in range(2)])
        first, second = await store.fetch_activities(10)
        good = Message("a", history.task_completed(T0, 0, '"ok"'), "e1")
        with pytest.raises(TypeError):
            await store.complete_activities([(first, good), (second, unserializable("a"))])
        assert await store.pending_messages("a", T0) == []
        await store.release_activity_leases()
        assert [item.task_id for item in await store.fetch_activities(10)] == [0, 1]

    run(body())


def test_a_cancelled_write_is_not_run(store: SqliteStore, run: Callable[[Awaitable[Any]], Any]) -> None:
    async def body() -> None:
        cancelled = asyncio.ensure_future(store.send_messages([raised("a", "cancelled")]))
        kept = asyncio.ensure_future(store.send_messages([raised("a", "kept")]))
        await asyncio.sleep(0)  # both are queued
        cancelled.cancel()
        await kept
        assert [m.event["Name"] for m in await store.pending_messages("a", T0)] == ["kept"]

    run(body())


def test_close_commits_queued_writes(path: Path, run: Callable[[Awaitable[Any]], Any]) -> None:
    async def body() -> None:
        store = SqliteStore(path)
        await store.open()
        task = asyncio.ensure_future(store.send_messages([raised("a")]))
        await asyncio.sleep(0)  # queued, not committed
        await store.close()
        await task
        with pytest.raises(RuntimeError, match="not open"):
            await store.send_messages([raised("a")])

    run(body())
    assert len(committed(path, "SELECT * FROM messages")) == 1


def test_the_cached_counter_and_watermark_follow_another_connection(path: Path,
                                                                    run: Callable[[Awaitable[Any]], Any]) -> None:
    async def body() -> None:
        one, two = SqliteStore(path), SqliteStore(path)
        await one.open()
        await two.open()
        try:
            etags = []
            for n in range(6):
                writer = one if n % 2 else two
                created = state(f"i{n}")
                await writer.create_instance(created, start(f"i{n}"))
                etags.append(created.etag)
            assert etags == sorted(set(etags))
            await one.send_messages([Message("t", history.timer_fired(T0, 1, T0 + timedelta(seconds=10)),
                                             visible_time=T0 + timedelta(seconds=10))])
            assert "t" in await one.ready_instances(T0 + timedelta(seconds=20), 10)  # moves the watermark
            await two.send_messages([raised("u", "late", visible_time=None)])
            timer = Message("v", history.timer_fired(T0, 1, T0 + timedelta(seconds=5)),
                            visible_time=T0 + timedelta(seconds=5))
            await two.send_messages([timer])  # due at the watermark `one` set: indexed as ready at once
            assert (await two.ready_instances(T0 + timedelta(seconds=20), 10))[-2:] == ["u", "v"]
        finally:
            await one.close()
            await two.close()

    run(body())


def test_schema_version_1_is_upgraded(path: Path, run: Callable[[Awaitable[Any]], Any]) -> None:
    """Version 1 kept one event per history row at seq 0, 1, ...; the counter may be far below them."""
    events = [history.generic_event(T0, str(n)) for n in range(50)]

    async def make_v1() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.create_instance(state("a"), start("a"))
        await store.close()
        with closing(sqlite3.connect(path)) as db, db:
            db.executemany("INSERT INTO history (instance_id, seq, event) VALUES ('a', ?, ?)",
                           [(n, sqlite_module._encode(event)) for n, event in enumerate(events)])
            db.execute("UPDATE meta SET value = 1 WHERE key = 'etag'")
            db.execute("UPDATE instances SET etag = 1")
            db.execute("UPDATE schema_version SET version = 1")

    async def upgrade() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            assert await store.get_history("a") == events
            cp = await run_checkpoint(store, "a")
            assert cp.state.etag > len(events) - 1  # the new chunk sorts after the old rows
            assert await store.get_history("a") == events + cp.new_events
        finally:
            await store.close()

    run(make_v1())
    run(upgrade())
    assert committed(path, "SELECT version FROM schema_version") == [(sqlite_module.SCHEMA_VERSION,)]


def test_the_wal_is_checkpointed_by_the_store_thread(store: SqliteStore, path: Path,
                                                     run: Callable[[Awaitable[Any]], Any]) -> None:
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)  # never inside a COMMIT
    size = path.stat().st_size
    for n in range(sqlite_module.CHECKPOINT_EVERY * 2):
        run(store.create_instance(state(f"i{n}"), start(f"i{n}")))
    deadline = time.monotonic() + 10
    while path.stat().st_size == size and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_size > size
