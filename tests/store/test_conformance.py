"""One suite for every store: what the engine may rely on, whatever the backend.

`azure` runs only when FUNCEMU_TEST_AZURITE_CONNECTION holds an Azurite connection string.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from funcemu.durable import history
from funcemu.durable.store import (
    ActivityItem,
    Checkpoint,
    InstanceQuery,
    InstanceState,
    MemoryStore,
    Message,
    RuntimeStatus,
    SqliteStore,
    StaleCheckpointError,
    Store,
    StoreConfigError,
    open_store,
)

T = TypeVar("T")
Runner = Callable[[Awaitable[T]], T]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
AZURITE_ENV = "FUNCEMU_TEST_AZURITE_CONNECTION"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# fixtures


@pytest.fixture
def run() -> Iterator[Runner[Any]]:
    """Run a coroutine on one event loop per test (stores may bind clients to their loop)."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


@pytest.fixture(params=["memory", "sqlite", "azure"])
def store(request: pytest.FixtureRequest, run: Runner[Any], tmp_path: Path) -> Iterator[Store]:
    kind: str = request.param
    options: dict[str, Any] = {}
    hub = "TestHub"
    if kind == "azure":
        connection = os.environ.get(AZURITE_ENV)
        if not connection:
            pytest.skip(f"azure: set {AZURITE_ENV} to an Azurite connection string to run it")
        options["connection_string"] = connection
        hub = "t" + uuid.uuid4().hex[:16]
    opened = open_store(kind, data_dir=tmp_path, hub_name=hub, **options)
    run(opened.open())
    try:
        yield opened
    finally:
        if kind == "azure":
            run(opened.delete_task_hub())
        run(opened.close())


def scenario(body: Callable[[Store], Awaitable[None]]) -> Callable[[Store, Runner[Any]], None]:
    """Turn `async def test_x(store)` into a test that runs on the `run` fixture's loop."""
    def test(store: Store, run: Runner[Any]) -> None:
        run(body(store))
    test.__name__, test.__doc__ = body.__name__, body.__doc__
    return test


# builders


def new_state(instance_id: str, *, execution_id: str = "e1", created: datetime = T0,
              status: RuntimeStatus = RuntimeStatus.Pending) -> InstanceState:
    return InstanceState(instance_id=instance_id, name="hello", execution_id=execution_id,
                         runtime_status=status, created_time=created, last_updated_time=created,
                         input='"\\"x\\""')


def start_message(instance_id: str, execution_id: str = "e1") -> Message:
    event = history.execution_started(T0, "hello", instance_id, execution_id, '"\\"x\\""')
    return Message(instance_id=instance_id, event=event, execution_id=execution_id)


def raised(instance_id: str, name: str, visible: datetime | None = None) -> Message:
    return Message(instance_id=instance_id, event=history.event_raised(T0, name, None), visible_time=visible)


def timer(instance_id: str, timer_id: int, fire_at: datetime) -> Message:
    return Message(instance_id=instance_id, event=history.timer_fired(fire_at, timer_id, fire_at),
                   visible_time=fire_at)


def names(messages: list[Message]) -> list[Any]:
    return [m.event.get("Name") for m in messages]


async def create(store: Store, instance_id: str, **state: Any) -> InstanceState:
    created = new_state(instance_id, **state)
    await store.create_instance(created, start_message(instance_id, created.execution_id))
    return created


async def advance(store: Store, instance_id: str, *, now: datetime = T0, events: int = 2,
                  output: str | None = None, **fields: Any) -> Checkpoint:
    """Run one fake episode: consume the visible messages, append `events` events (or `new_events=`),
    set `output`; the other `fields` go to the Checkpoint as they are."""
    state = await store.get_instance(instance_id)
    fields.setdefault("new_events", history.episode(
        now, *[history.generic_event(now, str(i)) for i in range(events - 2)]))
    new = replace(state or new_state(instance_id), runtime_status=RuntimeStatus.Running,
                  last_updated_time=now, output=output)
    cp = Checkpoint(instance_id, state.etag if state else None, new,
                    consumed=await store.pending_messages(instance_id, now), **fields)
    await store.checkpoint(cp)
    return cp


def activities(instance_id: str, count: int) -> list[ActivityItem]:
    return [ActivityItem(instance_id=instance_id, execution_id="e1", task_id=i, name="say", input=f'"{i}"')
            for i in range(count)]


def completed(item: ActivityItem) -> Message:
    return Message(instance_id=item.instance_id, execution_id=item.execution_id,
                   event=history.task_completed(T0, item.task_id, item.input))


# instances and history


@scenario
async def test_create_then_get(store: Store) -> None:
    created = await create(store, "a")
    found = await store.get_instance("a")
    assert created.etag is not None and found is not None
    assert found == created
    assert await store.get_history("a") == []
    [start] = await store.pending_messages("a", T0)
    assert start.event == start_message("a").event and start.execution_id == "e1" and start.message_id


@scenario
async def test_unknown_instance(store: Store) -> None:
    assert await store.get_instance("nope") is None
    assert await store.get_history("nope") == []
    assert await store.pending_messages("nope", T0) == []


@scenario
async def test_create_replaces_history_messages_and_items(store: Store) -> None:
    await create(store, "a")
    first = await advance(store, "a", activities=activities("a", 2), messages=[raised("a", "tick", at(60))])
    await store.send_messages([raised("a", "late")])
    replaced = await create(store, "a", execution_id="e2")
    assert replaced.etag != first.state.etag
    assert (await store.get_instance("a")) == replaced
    assert await store.get_history("a") == []
    assert [m.execution_id for m in await store.pending_messages("a", at(3600))] == ["e2"]
    assert await store.fetch_activities(10) == []
    assert await store.next_visible_time() is None


@scenario
async def test_history_keeps_append_order(store: Store) -> None:
    await create(store, "a")
    one = await advance(store, "a", events=3)
    two = await advance(store, "a", now=at(1), events=4)
    assert await store.get_history("a") == one.new_events + two.new_events


@scenario
async def test_replace_history(store: Store) -> None:
    await create(store, "a")
    await advance(store, "a", events=5)
    fresh = history.episode(at(1), history.generic_event(at(1), "new"))
    await advance(store, "a", now=at(1), new_events=fresh, replace_history=True)
    assert await store.get_history("a") == fresh


@scenario
async def test_returned_values_are_copies(store: Store) -> None:
    await create(store, "a")
    cp = await advance(store, "a", events=3)
    cp.new_events[0]["Timestamp"] = "changed"
    (await store.get_history("a"))[1]["Timestamp"] = "changed"
    (await store.get_instance("a")).output = "changed"  # type: ignore[union-attr]
    assert all(event["Timestamp"] != "changed" for event in await store.get_history("a"))
    assert (await store.get_instance("a")).output is None  # type: ignore[union-attr]


# messages


@scenario
async def test_messages_become_visible_at_their_time(store: Store) -> None:
    await store.send_messages([raised("a", "now"), raised("a", "later", at(10))])
    assert names(await store.pending_messages("a", at(9.999))) == ["now"]
    assert await store.next_visible_time() == at(10)
    assert names(await store.pending_messages("a", at(10))) == ["now", "later"]
    [timer] = [m for m in await store.pending_messages("a", at(10)) if m.visible_time]
    assert timer.visible_time == at(10)


@scenario
async def test_next_visible_time_counts_timers_not_yet_ready(store: Store) -> None:
    assert await store.next_visible_time() is None
    await store.send_messages([raised("x", "b", at(30)), raised("x", "a", at(10)), raised("y", "now")])
    assert await store.next_visible_time() == at(10)
    assert await store.ready_instances(at(5), 10) == ["y"]
    assert await store.next_visible_time() == at(10)
    assert await store.ready_instances(at(10), 10) == ["x", "y"]
    assert await store.next_visible_time() == at(30)  # the due one is reported ready instead
    await store.ready_instances(T0, 10)
    assert await store.next_visible_time() == at(10)
    await advance(store, "x", now=at(10))
    assert await store.next_visible_time() == at(30)
    await store.ready_instances(at(30), 10)
    assert await store.next_visible_time() is None
    await advance(store, "x", now=at(30))
    assert await store.ready_instances(at(30), 10) == ["y"]


@scenario
async def test_ready_instances_oldest_message_first(store: Store) -> None:
    await store.send_messages([raised("d", "timer", at(10)), raised("b", "1"), raised("a", "2"),
                               raised("c", "3"), raised("b", "4")])
    assert await store.ready_instances(T0, 10) == ["b", "a", "c"]
    assert await store.ready_instances(at(10), 10) == ["d", "b", "a", "c"]
    assert await store.ready_instances(at(10), 2) == ["d", "b"]
    await advance(store, "d", now=at(10))
    await advance(store, "b", now=at(10))
    assert await store.ready_instances(at(10), 10) == ["a", "c"]


@scenario
async def test_ready_instances_follow_the_clock_back(store: Store) -> None:
    await store.send_messages([raised("t", "timer", at(10)), raised("n", "now")])
    assert await store.ready_instances(at(20), 10) == ["t", "n"]
    assert await store.ready_instances(T0, 10) == ["n"]
    await store.send_messages([raised("u", "timer", at(5))])
    assert await store.ready_instances(at(5), 10) == ["n", "u"]


@scenario
async def test_timer_already_due_when_sent(store: Store) -> None:
    await store.send_messages([raised("n", "timer", at(10))])
    assert await store.ready_instances(at(20), 10) == ["n"]
    await store.send_messages([raised("p", "past", at(15)), raised("f", "future", at(25))])
    assert await store.ready_instances(at(20), 10) == ["n", "p"]
    assert await store.ready_instances(at(25), 10) == ["n", "p", "f"]


@scenario
async def test_ready_after_partial_consumption(store: Store) -> None:
    await store.send_messages([raised("a", "1"), raised("a", "2"), raised("b", "3"), raised("a", "4")])
    first = (await store.pending_messages("a", T0))[:1]
    await store.checkpoint(Checkpoint("a", None, new_state("a"), consumed=first))
    assert await store.ready_instances(T0, 10) == ["a", "b"]
    second = (await store.pending_messages("a", T0))[:1]
    await store.checkpoint(Checkpoint("a", (await store.get_instance("a")).etag,  # type: ignore[union-attr]
                                      new_state("a"), consumed=second))
    assert await store.ready_instances(T0, 10) == ["b", "a"]
    assert names(await store.pending_messages("a", T0)) == ["4"]
    await advance(store, "a")
    assert await store.ready_instances(T0, 10) == ["b"]


@scenario
async def test_ready_once_after_consuming_an_early_timer(store: Store) -> None:
    await store.send_messages([raised("a", "timer", at(10)), raised("a", "now")])
    assert await store.ready_instances(at(10), 1) == ["a"]
    timer = [m for m in await store.pending_messages("a", at(10)) if m.visible_time]
    await store.checkpoint(Checkpoint("a", None, new_state("a"), consumed=timer))
    assert await store.ready_instances(at(10), 10) == ["a"]


@scenario
async def test_pending_messages_in_send_order(store: Store) -> None:
    await store.send_messages([raised("a", "1"), raised("a", "2", at(5)), raised("a", "3")])
    await store.send_messages([raised("a", "4", at(1))])
    assert names(await store.pending_messages("a", T0)) == ["1", "3"]
    assert names(await store.pending_messages("a", at(5))) == ["1", "2", "3", "4"]


# checkpoints


@scenario
async def test_checkpoint_applies_everything(store: Store) -> None:
    await create(store, "a")
    await store.send_messages([raised("a", "go")])
    cp = await advance(store, "a", output='"done"', activities=activities("a", 1),
                       messages=[raised("b", "hello"), raised("a", "timer", at(60))])
    found = await store.get_instance("a")
    assert found == cp.state and found is not None and found.output == '"done"'
    assert await store.get_history("a") == cp.new_events
    assert names(await store.pending_messages("a", T0)) == []
    assert names(await store.pending_messages("a", at(60))) == ["timer"]
    assert names(await store.pending_messages("b", T0)) == ["hello"]
    assert [item.task_id for item in await store.fetch_activities(10)] == [0]


@scenario
async def test_stale_checkpoint_changes_nothing(store: Store) -> None:
    old = await create(store, "a")
    won = await advance(store, "a", messages=[timer("a", 1, at(60))])
    await store.send_messages([raised("a", "next")])
    lost = Checkpoint("a", old.etag, replace(old, output='"lost"'), consumed=await store.pending_messages("a", T0),
                      new_events=history.episode(T0), messages=[raised("b", "x")], activities=activities("a", 1),
                      replace_history=True, canceled_timers=[1])
    with pytest.raises(StaleCheckpointError, match="'a'"):
        await store.checkpoint(lost)
    assert lost.state.etag == old.etag
    assert await store.get_instance("a") == won.state
    assert await store.get_history("a") == won.new_events
    assert names(await store.pending_messages("a", at(60))) == [None, "next"]
    assert await store.pending_messages("b", T0) == []
    assert await store.fetch_activities(10) == []


@scenario
async def test_first_checkpoint_of_a_new_instance_needs_no_etag(store: Store) -> None:
    await store.send_messages([start_message("sub")])
    cp = await advance(store, "sub")
    assert (await store.get_instance("sub")) == cp.state and cp.state.etag is not None
    with pytest.raises(StaleCheckpointError):
        await store.checkpoint(Checkpoint("sub", None, new_state("sub")))


@scenario
async def test_replaced_instance_rejects_the_old_episode(store: Store) -> None:
    old = await create(store, "a")
    await create(store, "a", execution_id="e2")
    with pytest.raises(StaleCheckpointError):
        await store.checkpoint(Checkpoint("a", old.etag, old, new_events=history.episode(T0)))
    assert await store.get_history("a") == []


@scenario
async def test_checkpoint_deletes_canceled_timers(store: Store) -> None:
    await create(store, "a")
    await store.send_messages([timer("a", 1, at(10)), timer("b", 1, at(10))])
    await advance(store, "a", messages=[timer("a", 2, at(20)), timer("a", 3, at(30)), raised("a", "x", at(10))])
    await advance(store, "a", messages=[timer("a", 4, at(40))], canceled_timers=[1, 3, 4])
    left = await store.pending_messages("a", at(60))
    assert [(m.event.get("TimerId"), m.event.get("Name")) for m in left] == [(2, None), (None, "x")]
    assert len(await store.pending_messages("b", at(60))) == 1
    assert await store.ready_instances(at(15), 10) == ["b", "a"]


# activities


@scenario
async def test_fetch_leases_each_item_once(store: Store) -> None:
    await create(store, "a")
    await advance(store, "a", activities=activities("a", 5))
    first = await store.fetch_activities(3)
    assert [(i.task_id, i.name, i.input, i.dequeue_count) for i in first] == [
        (0, "say", '"0"', 1), (1, "say", '"1"', 1), (2, "say", '"2"', 1)]
    assert all(i.item_id and i.instance_id == "a" and i.execution_id == "e1" for i in first)
    assert [i.task_id for i in await store.fetch_activities(10)] == [3, 4]
    assert await store.fetch_activities(10) == []


@scenario
async def test_complete_activity_sends_the_result(store: Store) -> None:
    await create(store, "a")
    await advance(store, "a", activities=activities("a", 2))
    done, running = await store.fetch_activities(2)
    await store.complete_activities([(done, completed(done))])
    [message] = await store.pending_messages("a", T0)
    assert message.event["EventType"] == history.EventType.TaskCompleted and message.event["TaskScheduledId"] == 0
    await store.release_activity_leases()
    assert [i.task_id for i in await store.fetch_activities(10)] == [running.task_id]


@scenario
async def test_release_makes_leased_items_available(store: Store) -> None:
    await create(store, "a")
    await advance(store, "a", activities=activities("a", 3))
    await store.fetch_activities(2)
    await store.release_activity_leases()
    again = await store.fetch_activities(10)
    assert [(i.task_id, i.dequeue_count) for i in again] == [(0, 2), (1, 2), (2, 1)]


@scenario
async def test_completing_a_purged_item_sends_nothing(store: Store) -> None:
    await create(store, "a")
    await advance(store, "a", activities=activities("a", 1))
    [item] = await store.fetch_activities(1)
    await store.purge_instances(["a"])
    await store.complete_activities([(item, completed(item))])
    assert await store.pending_messages("a", T0) == []
    assert await store.ready_instances(T0, 10) == []


@scenario
async def test_complete_activities_in_one_call(store: Store) -> None:
    await create(store, "a")
    await create(store, "b")
    await advance(store, "a", activities=activities("a", 3))
    await advance(store, "b", activities=activities("b", 1))
    fetched = await store.fetch_activities(10)
    done = [item for item in fetched if item.task_id != 1]
    await store.complete_activities([(item, completed(item)) for item in done])
    assert [m.event["TaskScheduledId"] for m in await store.pending_messages("a", T0)] == [0, 2]
    assert [m.event["TaskScheduledId"] for m in await store.pending_messages("b", T0)] == [0]
    assert await store.ready_instances(T0, 10) == ["a", "b"]
    await store.release_activity_leases()
    assert [(i.instance_id, i.task_id) for i in await store.fetch_activities(10)] == [("a", 1)]
    await store.complete_activities([])


@scenario
async def test_complete_activities_skips_purged_items(store: Store) -> None:
    await create(store, "a")
    await create(store, "gone")
    await advance(store, "a", activities=activities("a", 1))
    await advance(store, "gone", activities=activities("gone", 2))
    fetched = await store.fetch_activities(10)
    await store.purge_instances(["gone"])
    await store.complete_activities([(item, completed(item)) for item in fetched])
    assert [m.event["TaskScheduledId"] for m in await store.pending_messages("a", T0)] == [0]
    assert await store.pending_messages("gone", T0) == []
    assert await store.ready_instances(T0, 10) == ["a"]


@scenario
async def test_complete_activities_twice_sends_once(store: Store) -> None:
    """A second completion of the same item (a duplicate in the batch, or a later batch) sends nothing."""
    await create(store, "a")
    await advance(store, "a", activities=activities("a", 2))
    first, second = await store.fetch_activities(10)
    await store.complete_activities([(first, completed(first)), (first, completed(first))])
    await store.complete_activities([(first, completed(first)), (second, completed(second))])
    assert [m.event["TaskScheduledId"] for m in await store.pending_messages("a", T0)] == [0, 1]


@scenario
async def test_fan_out_of_many_activities(store: Store) -> None:
    await create(store, "a")
    await advance(store, "a", activities=activities("a", 1000))
    fetched = 0
    while batch := await store.fetch_activities(300):
        fetched += len(batch)
        half = len(batch) // 2
        for item in batch[:half]:
            await store.complete_activities([(item, completed(item))])
        await store.complete_activities([(item, completed(item)) for item in batch[half:]])
    assert fetched == 1000
    assert await store.ready_instances(T0, 10) == ["a"]
    results = await store.pending_messages("a", T0)
    assert [m.event["TaskScheduledId"] for m in results] == list(range(1000))
    await advance(store, "a")
    assert await store.ready_instances(T0, 10) == []


# queries, purge, delete


async def create_many(store: Store) -> list[InstanceState]:
    """25 instances; created times come in pairs, and were created out of order. Queries return them
    in instance id order (the provider's PartitionKey order), not by time."""
    statuses = [RuntimeStatus.Running, RuntimeStatus.Completed, RuntimeStatus.Failed]
    made = []
    for i in reversed(range(25)):
        prefix = "job" if i % 2 else "task"
        made.append(await create(store, f"{prefix}-{i:02d}", created=at(i // 2), status=statuses[i % 3]))
    return sorted(made, key=lambda s: s.instance_id)


async def all_pages(store: Store, query: InstanceQuery) -> tuple[list[str], list[int]]:
    ids, sizes = [], []
    while True:
        page, token = await store.query_instances(query)
        ids += [state.instance_id for state in page]
        sizes.append(len(page))
        if token is None:
            return ids, sizes
        query = replace(query, continuation=token)


@scenario
async def test_query_filters(store: Store) -> None:
    made = await create_many(store)
    everything, token = await store.query_instances(InstanceQuery())
    assert everything == made and token is None

    async def ids(**filters: Any) -> list[str]:
        return [s.instance_id for s in (await store.query_instances(InstanceQuery(**filters)))[0]]

    def expect(keep: Callable[[InstanceState], bool]) -> list[str]:
        return [s.instance_id for s in made if keep(s)]

    done = [RuntimeStatus.Completed, RuntimeStatus.Failed]
    assert await ids(statuses=done) == expect(lambda s: s.runtime_status in done)
    assert await ids(created_from=at(3), created_to=at(5)) == expect(lambda s: at(3) <= s.created_time <= at(5))
    assert await ids(instance_id_prefix="job-1") == expect(lambda s: s.instance_id.startswith("job-1"))
    assert await ids(instance_id_prefix="task", statuses=[RuntimeStatus.Running], created_to=at(6)) == expect(
        lambda s: s.instance_id.startswith("task") and s.runtime_status == RuntimeStatus.Running
        and s.created_time <= at(6))


@scenario
async def test_query_pages(store: Store) -> None:
    made = await create_many(store)
    assert await all_pages(store, InstanceQuery(top=10)) == ([s.instance_id for s in made], [10, 10, 5])
    assert await all_pages(store, InstanceQuery(top=25)) == ([s.instance_id for s in made], [25])
    jobs = [s.instance_id for s in made if s.instance_id.startswith("job")]
    assert await all_pages(store, InstanceQuery(top=4, instance_id_prefix="job")) == (jobs, [4, 4, 4])
    with pytest.raises(ValueError, match="continuation"):
        await store.query_instances(InstanceQuery(top=4, continuation="not a token"))


@scenario
async def test_purge(store: Store) -> None:
    await create(store, "a")
    await create(store, "b")
    await advance(store, "a", activities=activities("a", 2), messages=[raised("a", "timer", at(60))])
    await store.fetch_activities(1)
    assert await store.purge_instances(["a", "missing"]) == 1
    assert await store.get_instance("a") is None
    assert await store.get_history("a") == []
    assert await store.pending_messages("a", at(60)) == []
    assert await store.ready_instances(at(60), 10) == ["b"]
    assert await store.next_visible_time() is None
    await store.release_activity_leases()
    assert await store.fetch_activities(10) == []
    assert await store.get_instance("b") is not None
    assert await store.purge_instances(["a"]) == 0


@scenario
async def test_delete_task_hub(store: Store) -> None:
    await create(store, "a")
    await advance(store, "a", activities=activities("a", 2), messages=[raised("b", "timer", at(60))])
    await store.delete_task_hub()
    assert await store.get_instance("a") is None
    assert await store.get_history("a") == []
    assert await store.query_instances(InstanceQuery()) == ([], None)
    assert await store.ready_instances(at(60), 10) == []
    assert await store.next_visible_time() is None
    assert await store.fetch_activities(10) == []


# the factory


def test_open_store_builds_each_kind(tmp_path: Path) -> None:
    assert isinstance(open_store("memory", data_dir=tmp_path, hub_name="Hub"), MemoryStore)
    sqlite = open_store("sqlite", data_dir=tmp_path, hub_name="MyHub", connection_string=None)
    assert isinstance(sqlite, SqliteStore) and sqlite.path == tmp_path / "MyHub.sqlite3"


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("mongo", {}, "storage 'mongo': unknown kind; expected one of memory, sqlite, azure"),
    ("memory", {"partition_count": 4}, "storage 'memory': unexpected option(s) partition_count"),
    ("azure", {}, "storage 'azure': no connection string"),
])
def test_open_store_refuses_bad_config(tmp_path: Path, kind: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(StoreConfigError) as raised_error:
        open_store(kind, data_dir=tmp_path, hub_name="Hub", **options)
    assert str(raised_error.value).startswith(message)
