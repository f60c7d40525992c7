"""How many storage requests the Azure store makes (issue #8): an activity step costs the requests of the
provider's layout and no more, and the shortcuts that save the rest (what the process checkpointed last,
its own sends kept leased, outbox rows deleted by the next transaction) stay correct when another
process writes the same hub."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import TableServiceClient

from funcemu.durable import history
from funcemu.durable.store import azure as azure_module
from funcemu.durable.store.azure import AzureStore
from funcemu.durable.store.base import (
    ActivityItem,
    Checkpoint,
    InstanceState,
    Message,
    RuntimeStatus,
    StaleCheckpointError,
)
from funcemu.testing.azurite import Azurite

pytestmark = pytest.mark.azurite
Run = Callable[[Awaitable[Any]], Any]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
QUIET = 30.0     # polling interval: no periodic reads during a test


def kind(method: str, url: str) -> str:
    path = url.split("?")[0]
    if "/messages" in path:
        return {"GET": "receive", "POST": "send", "DELETE": "delete", "PUT": "update"}[method]
    if path.endswith("$batch"):
        return "batch"
    if "(" in path:
        return {"GET": "get", "PUT": "upsert", "MERGE": "upsert", "PATCH": "upsert", "DELETE": "remove"}[method]
    return f"{method} {path.rsplit('/', 1)[-1]}"


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every request any Azure client of this process sends, by kind."""
    counted: Counter[str] = Counter()
    send = AioHttpTransport.send

    async def counting(self: AioHttpTransport, request: Any, **kwargs: Any) -> Any:
        counted[kind(request.method, request.url)] += 1
        return await send(self, request, **kwargs)
    monkeypatch.setattr(AioHttpTransport, "send", counting)
    yield counted


@pytest.fixture
def stores(azurite: Azurite, hub_name: str, run: Run) -> Iterator[Callable[[], AzureStore]]:
    """Open stores on one fresh hub (as separate processes would), closed and the hub deleted afterwards."""
    opened: list[AzureStore] = []

    def make() -> AzureStore:
        store = AzureStore(azurite.connection_string, hub_name, max_queue_polling_interval=QUIET)
        run(store.open())
        opened.append(store)
        return store
    yield make
    if not any(store._services for store in opened):
        make()
    run(next(store for store in opened if store._services).delete_task_hub())
    for store in opened:
        run(store.close())


def state(instance_id: str, **changes: Any) -> InstanceState:
    fields: dict[str, Any] = dict(instance_id=instance_id, name="chain", execution_id="e1",
                                  runtime_status=RuntimeStatus.Pending, created_time=T0, last_updated_time=T0)
    fields.update(changes)
    return InstanceState(**fields)


def start(instance_id: str) -> Message:
    return Message(instance_id, history.execution_started(T0, "chain", instance_id, "e1", None), "e1")


async def engine_start(store: AzureStore) -> None:
    """What the engine does first: read the queues (its sends are kept from now on)."""
    await store.ready_instances(T0, 10)
    await store.fetch_activities(10)


async def episode(store: AzureStore, instance_id: str, step: int, *, last: bool = False) -> Checkpoint:
    """One episode as `Episodes` runs it: schedule activity `step` (or complete, when `last`)."""
    messages = await store.pending_messages(instance_id, T0)
    assert messages, f"episode {step} of {instance_id} has nothing to do"
    current = await store.get_instance(instance_id)
    assert current is not None
    past = [] if step == 0 else await store.get_history(instance_id)
    events = [m.event for m in messages]
    if last:
        events.append(history.execution_completed(T0, step, RuntimeStatus.Completed.number, '"done"'))
        status, activities = RuntimeStatus.Completed, []
    else:
        events.append(history.task_scheduled(T0, step, "add_one", str(step)))
        status, activities = RuntimeStatus.Running, [ActivityItem(instance_id, "e1", step, "add_one", str(step))]
    cp = Checkpoint(instance_id, current.etag, replace(current, runtime_status=status), consumed=messages,
                    new_events=history.episode(T0, *events), replace_history=not past, activities=activities)
    await store.checkpoint(cp)
    return cp


async def activity(store: AzureStore) -> None:
    [item] = await store.fetch_activities(10)
    result = Message(item.instance_id, history.task_completed(T0, item.task_id, str(item.task_id + 1)),
                     item.execution_id)
    await store.complete_activities([(item, result)])


def test_an_activity_step_costs_only_the_layouts_requests(stores: Callable[[], AzureStore], run: Run,
                                                          requests: Counter[str]) -> None:
    """The History transaction (which also deletes the last step's sent outbox row), the Instances row,
    the work item and the result sent, the consumed message and the work item deleted: no reads."""
    store = stores()
    run(engine_start(store))
    run(store.create_instance(state("chain"), start("chain")))
    run(episode(store, "chain", 0))
    run(activity(store))
    requests.clear()
    run(episode(store, "chain", 1))
    run(activity(store))
    assert requests == Counter(batch=1, upsert=1, send=2, delete=2)
    requests.clear()
    run(episode(store, "chain", 2, last=True))
    assert requests == Counter(batch=1, upsert=1, delete=1)
    assert len(run(store.get_history("chain"))) == 3 * 4
    assert outbox_rows(store, "chain") == []


def test_a_new_instance_costs_its_row_and_its_start(stores: Callable[[], AzureStore], run: Run,
                                                    requests: Counter[str]) -> None:
    store = stores()
    run(engine_start(store))
    requests.clear()
    run(store.create_instance(state("fresh"), start("fresh")))
    assert requests == Counter({"send": 1, f"POST {store.names.instances_table}": 1})   # row inserted
    assert run(store.ready_instances(T0, 10)) == ["fresh"]     # its own start: held, no read
    assert requests["receive"] == 0


def test_status_reads_take_the_row_alone(stores: Callable[[], AzureStore], run: Run,
                                         requests: Counter[str]) -> None:
    store = stores()
    run(engine_start(store))
    run(store.create_instance(state("status"), start("status")))
    cp = run(episode(store, "status", 0))
    requests.clear()
    found = run(store.get_instance("status"))
    assert requests == Counter(get=1)
    assert found == cp.state and found.etag == cp.state.etag


def test_another_processs_checkpoint_makes_the_remembered_state_stale_then_it_is_read(
        stores: Callable[[], AzureStore], run: Run, requests: Counter[str]) -> None:
    first, second = stores(), stores()
    run(engine_start(first))
    run(first.create_instance(state("shared"), start("shared")))
    run(episode(first, "shared", 0))
    run(activity(first))
    # the other process commits an episode of the instance (a message it received, say)
    current = run(second.get_instance("shared"))
    moved = Checkpoint("shared", current.etag, replace(current, custom_status='"moved"'),
                       new_events=history.episode(T0, history.event_raised(T0, "x", None)))
    run(second.checkpoint(moved))
    with pytest.raises(StaleCheckpointError):
        run(episode(first, "shared", 1))      # started from what `first` checkpointed: refused, nothing written
    cp = run(episode(first, "shared", 1))     # the engine's replay reads the instance
    assert cp.state.custom_status == '"moved"'
    assert [e["EventType"] for e in run(second.get_history("shared"))].count(history.EventType.EventRaised) == 1
    run(activity(first))
    requests.clear()
    run(episode(first, "shared", 2))          # another writer was seen: the sentinel is checked first
    assert requests["get"] == 1


def test_an_episode_that_ends_without_a_checkpoint_checks_the_sentinel_next_time(
        stores: Callable[[], AzureStore], run: Run, requests: Counter[str]) -> None:
    store = stores()
    run(engine_start(store))
    run(store.create_instance(state("broken"), start("broken")))

    async def failed_episode() -> None:
        await store.pending_messages("broken", T0)
        await store.get_instance("broken")      # and then its replay raised, say
    run(failed_episode())
    requests.clear()
    run(episode(store, "broken", 0))
    assert requests["get"] == 1


def test_own_sends_are_kept_leased_until_close(stores: Callable[[], AzureStore], run: Run,
                                               requests: Counter[str]) -> None:
    first, second = stores(), stores()
    run(engine_start(first))
    requests.clear()
    run(first.send_messages([Message("kept", history.event_raised(T0, "go", None))]))
    assert run(first.ready_instances(T0, 10)) == ["kept"] and requests["receive"] == 0
    assert run(second.pending_messages("kept", T0)) == []     # leased to the sender by the send itself
    run(first.close())
    assert len(run(second.pending_messages("kept", T0))) == 1


def test_a_store_that_does_not_dispatch_sends_visible_messages(stores: Callable[[], AzureStore], run: Run) -> None:
    client, host = stores(), stores()
    run(client.send_messages([Message("visible", history.event_raised(T0, "go", None))]))
    assert len(run(host.pending_messages("visible", T0))) == 1


def test_prefetched_work_items_wait_for_the_activity_loop_then_go_back(
        stores: Callable[[], AzureStore], run: Run, requests: Counter[str]) -> None:
    first, second = stores(), stores()
    run(engine_start(first))
    run(engine_start(second))
    run(first.create_instance(state("items"), start("items")))
    run(episode(first, "items", 0))
    assert run(second.fetch_activities(10)) == []             # leased to the sender by the send itself
    requests.clear()
    [item] = run(first.fetch_activities(10))
    assert item.task_id == 0 and item.dequeue_count == 1 and requests["receive"] == 0
    run(first.create_instance(state("late"), start("late")))
    run(episode(first, "late", 0))
    [waiting] = first.messaging.prefetched.values()
    waiting.lease_until = time.monotonic() + 1                 # it waited most of its lease
    [again] = run(first.fetch_activities(10))                  # given back, then read like any other item
    assert (again.instance_id, again.task_id, again.dequeue_count) == ("late", 0, 1)
    assert requests["update"] == 1 and requests["receive"] == 1


def test_the_work_item_queue_is_read_only_when_something_may_be_there(
        stores: Callable[[], AzureStore], run: Run, requests: Counter[str]) -> None:
    store = stores()
    run(engine_start(store))
    requests.clear()
    assert run(store.fetch_activities(10)) == [] and requests["receive"] == 0
    store.messaging.items_polled -= QUIET                      # the polling interval passed
    assert run(store.fetch_activities(10)) == [] and requests["receive"] == 1


def test_a_short_page_ends_a_receive(stores: Callable[[], AzureStore], run: Run, requests: Counter[str]) -> None:
    store, client = stores(), stores()
    run(client.send_messages([Message("paged", history.event_raised(T0, str(n), None)) for n in range(3)]))
    requests.clear()
    assert len(run(store.pending_messages("paged", T0))) == 3
    assert requests["receive"] == 1


def outbox_rows(store: AzureStore, instance_id: str) -> list[str]:
    with TableServiceClient.from_connection_string(store._connection) as service:
        table = service.get_table_client(store.names.history_table)
        return [row["RowKey"] for row in table.query_entities(f"PartitionKey eq '{instance_id}'")
                if row["RowKey"].startswith("outbox-")]


def test_a_sent_outbox_row_goes_with_the_next_transaction_or_the_sweep(
        stores: Callable[[], AzureStore], run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azure_module, "OUTBOX_SWEEP_AGE", 0.2)
    monkeypatch.setattr(azure_module, "SWEEP_INTERVAL", 0.05)
    store = stores()
    run(engine_start(store))
    run(store.create_instance(state("swept"), start("swept")))
    run(episode(store, "swept", 0))
    assert len(outbox_rows(store, "swept")) == 1               # sent, still there: the next checkpoint may take it
    run(asyncio.sleep(0.6))
    assert outbox_rows(store, "swept") == []                   # no checkpoint came: the sweep deleted it
    assert run(store.get_history("swept"))[-1]["EventType"] == history.EventType.OrchestratorCompleted


def test_a_finished_instances_outbox_goes_at_once(stores: Callable[[], AzureStore], run: Run) -> None:
    store = stores()
    run(engine_start(store))
    run(store.create_instance(state("child"), start("child")))
    current = run(store.get_instance("child"))
    done = Checkpoint("child", current.etag, replace(current, runtime_status=RuntimeStatus.Completed),
                      new_events=history.episode(T0), replace_history=True,
                      messages=[Message("parent", history.event_raised(T0, "result", '"ok"'))])
    run(store.checkpoint(done))
    assert outbox_rows(store, "child") == []
