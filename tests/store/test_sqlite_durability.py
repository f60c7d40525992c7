"""SQLite on disk: a host killed with SIGKILL loses no commit and leaves no half checkpoint; reopening
keeps the ready index; bad files fail clearly."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from funcemu.durable import history
from funcemu.durable.store import InstanceQuery, Message, RuntimeStatus, SqliteStore, SqliteStoreError

REPO = Path(__file__).resolve().parents[2]
COMMITS = 50

# The child leases 3 of 5 activities and commits COMMITS instances, each with one checkpoint. Then it
# starts one more checkpoint, in the same group commit as a message to "other", and, inside their
# transaction (while the store reads the new events), says "inside" and waits to be killed.
CHILD = """
import asyncio, dataclasses, sys
from datetime import datetime, timezone
from funcemu.durable import history
from funcemu.durable.store import ActivityItem, Checkpoint, InstanceState, Message, RuntimeStatus, SqliteStore

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)

class Stuck(list):
    def __iter__(self):
        yield from list.__iter__(self)
        print("inside", flush=True)
        sys.stdin.read()

async def start(store, instance_id):
    state = InstanceState(instance_id, "hello", "e1", RuntimeStatus.Pending, T0, T0)
    event = history.execution_started(T0, "hello", instance_id, "e1", None)
    await store.create_instance(state, Message(instance_id, event, "e1"))
    return state

async def finish(store, state, activities=(), events=list):
    done = dataclasses.replace(state, runtime_status=RuntimeStatus.Completed, output='"ok"')
    sink = Message("sink", history.event_raised(T0, state.instance_id, None))
    await store.checkpoint(Checkpoint(state.instance_id, state.etag, done,
                                      consumed=await store.pending_messages(state.instance_id, T0),
                                      new_events=events(history.episode(T0)), messages=[sink],
                                      activities=list(activities)))

async def main(path, commits):
    store = SqliteStore(path)
    await store.open()
    items = [ActivityItem("work", "e1", i, "say", None) for i in range(5)]
    await finish(store, await start(store, "work"), items)
    leased = await store.fetch_activities(3)
    print("leased", *[item.task_id for item in leased], flush=True)
    for n in range(commits):
        await finish(store, await start(store, f"i{n:05d}"))
    last = await start(store, "last")
    other = Message("other", history.event_raised(T0, "lost", None))
    await asyncio.gather(store.send_messages([other]),
                         finish(store, last, [ActivityItem("last", "e1", 0, "say", None)], Stuck))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def run_child(path: Path) -> list[int]:
    """Run the child until it is inside its last transaction, SIGKILL it; return the leased task ids."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(COMMITS)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdout is not None and child.stderr is not None
        leased = child.stdout.readline().split()
        inside = child.stdout.readline()
        assert leased[:1] == ["leased"] and inside == "inside\n", child.stderr.read()
        child.kill()
        assert child.wait() == -signal.SIGKILL
    return [int(task_id) for task_id in leased[1:]]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_writer_keeps_commits_and_drops_the_open_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    leased = run_child(path)
    asyncio.run(check_reopened(path, leased))


async def check_reopened(path: Path, leased: list[int]) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        await check_instances(store)
        await check_leases(store, leased)
    finally:
        await store.close()


async def check_instances(store: SqliteStore) -> None:
    """Every committed checkpoint is there whole; of the killed one, nothing."""
    found, _ = await store.query_instances(InstanceQuery(instance_id_prefix="i"))
    assert [s.instance_id for s in found] == [f"i{n:05d}" for n in range(COMMITS)]
    for state in found:
        assert state.runtime_status == RuntimeStatus.Completed and state.output == '"ok"'
        assert len(await store.get_history(state.instance_id)) == 2
        assert await store.pending_messages(state.instance_id, at(0)) == []
    last = await store.get_instance("last")
    assert last is not None and last.runtime_status == RuntimeStatus.Pending
    assert await store.get_history("last") == []
    assert [m.event["EventType"] for m in await store.pending_messages("last", at(0))] == [0]
    assert await store.pending_messages("other", at(0)) == []  # committed with the killed checkpoint: lost
    sink = await store.pending_messages("sink", at(0))
    assert [m.event["Name"] for m in sink] == ["work"] + [s.instance_id for s in found]
    assert await store.ready_instances(at(0), 10) == ["sink", "last"]


async def check_leases(store: SqliteStore, leased: list[int]) -> None:
    assert leased == [0, 1, 2]
    assert [(i.instance_id, i.task_id) for i in await store.fetch_activities(10)] == [("work", 3), ("work", 4)]
    await store.release_activity_leases()
    again = await store.fetch_activities(10)
    assert [(item.task_id, item.dequeue_count) for item in again] == [(0, 2), (1, 2), (2, 2), (3, 2), (4, 2)]


def test_reopen_keeps_messages_and_the_ready_index(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"

    async def first() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.send_messages([raised("t", at(10)), raised("n", None)])
        assert await store.ready_instances(at(20), 10) == ["t", "n"]
        await store.close()

    async def second() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.send_messages([raised("p", at(15))])
        assert await store.ready_instances(at(20), 10) == ["t", "n", "p"]
        assert await store.ready_instances(at(0), 10) == ["n"]
        assert await store.next_visible_time() == at(10)
        await store.close()

    asyncio.run(first())
    asyncio.run(second())


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SqliteStoreError, match=r"hub\.sqlite3: cannot open the task hub database"):
        asyncio.run(SqliteStore(path).open())


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    asyncio.run(open_and_close(path))
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(SqliteStoreError, match="schema version 99 is not supported"):
        asyncio.run(open_and_close(path))


async def open_and_close(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.close()


def at(seconds: float) -> datetime:
    return datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)


def raised(instance_id: str, visible: datetime | None) -> Message:
    return Message(instance_id, history.event_raised(at(0), "e", None), visible_time=visible)
