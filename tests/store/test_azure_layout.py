"""The Azure Storage store writes the real provider's layout (docs/azure-storage-taskhub.md): these tests
read the hub back with the plain Azure SDKs, as Storage Explorer or DF Monitor would."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.data.tables import TableServiceClient, UpdateMode
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from funcemu.durable import history
from funcemu.durable.store import azure as azure_module
from funcemu.durable.store.azure import AzureStore
from funcemu.durable.store.azure_names import (
    StorageUnreachableError,
    TaskHubNameError,
    escape_key,
    expand_connection_string,
    fnv1a_32,
    hub_names,
    partition_of,
    unescape_key,
)
from funcemu.durable.store.base import (
    ActivityItem,
    Checkpoint,
    InstanceQuery,
    InstanceState,
    Message,
    RuntimeStatus,
    StaleCheckpointError,
)
from funcemu.errors import FuncemuError
from funcemu.testing.azurite import Azurite

Run = Callable[[Awaitable[Any]], Any]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


# names, routing, keys: no Azurite needed


@pytest.mark.parametrize("name", ["ab", "1hub", "my_hub", "my-hub", "h" * 46, ""])
def test_invalid_hub_names_are_refused(name: str) -> None:
    with pytest.raises(TaskHubNameError, match=r"must match \^\[A-Za-z\]\[A-Za-z0-9\]\{2,44\}\$"):
        AzureStore("UseDevelopmentStorage=true", name)


def test_resource_names() -> None:
    names = hub_names("MyHub", 4)
    assert (names.history_table, names.instances_table, names.partitions_table) == (
        "MyHubHistory", "MyHubInstances", "MyHubPartitions")
    assert names.control_queues == ("myhub-control-00", "myhub-control-01", "myhub-control-02",
                                    "myhub-control-03")
    assert (names.workitems_queue, names.largemessages_container) == ("myhub-workitems", "myhub-largemessages")
    with pytest.raises(FuncemuError, match="between 1 and 16"):
        hub_names("MyHub", 17)


@pytest.mark.parametrize(("text", "expected"), [
    ("", 0x811C9DC5), ("a", 0xE40C292C), ("foobar", 0xBF9CF968), ("abc", 0x1A47E90B),
    ("@counter@key1", 0x9A41B811)])
def test_fnv1a_vectors(text: str, expected: int) -> None:
    assert fnv1a_32(text) == expected


def test_partition_routing() -> None:
    assert partition_of("abc", 4) == 3
    assert partition_of("@counter@key1", 4) == 1


def test_partition_key_escaping() -> None:
    raw = "a^b/c\\d#e?f\x01g\x7f"
    assert escape_key(raw) == "a^^b^0c^1d^2e^3f^\xc1g^\u013f"
    assert unescape_key(escape_key(raw)) == raw


def test_development_storage_means_azurite_default_ports() -> None:
    expanded = expand_connection_string("UseDevelopmentStorage=true")
    assert "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1" in expanded
    assert expand_connection_string("AccountName=x;AccountKey=y") == "AccountName=x;AccountKey=y"


def test_unreachable_endpoint_is_one_clear_error(run: Run) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                  f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
                  f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
                  f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    started = time.monotonic()
    with pytest.raises(StorageUnreachableError) as caught:
        run(AzureStore(connection, "LocalHub").open())
    assert time.monotonic() - started < 5
    assert isinstance(caught.value, FuncemuError)
    assert f"cannot reach the Azure Storage table endpoint http://127.0.0.1:{port}/devstoreaccount1" \
        in str(caught.value)


# layout read back with the plain SDKs


def clients(azurite: Azurite) -> tuple[TableServiceClient, QueueServiceClient, BlobServiceClient]:
    connection = azurite.connection_string
    return (TableServiceClient.from_connection_string(connection),
            QueueServiceClient.from_connection_string(connection),
            BlobServiceClient.from_connection_string(connection))


def state(instance_id: str, **changes: Any) -> InstanceState:
    fields: dict[str, Any] = dict(instance_id=instance_id, name="hello", execution_id="e1",
                                  runtime_status=RuntimeStatus.Pending, created_time=T0,
                                  last_updated_time=T0, input='"\\"Tokyo\\""')
    fields.update(changes)
    return InstanceState(**fields)


def start(instance_id: str, input_text: str = '"\\"Tokyo\\""') -> Message:
    event = history.execution_started(T0, "hello", instance_id, "e1", input_text)
    return Message(instance_id=instance_id, event=event, execution_id="e1")


async def first_episode(store: AzureStore, instance_id: str) -> Checkpoint:
    """Start `instance_id` and checkpoint an episode that schedules one activity and one timer."""
    await store.create_instance(state(instance_id), start(instance_id))
    [started] = await store.pending_messages(instance_id, T0)
    created = await store.get_instance(instance_id)
    assert created is not None
    events = history.episode(T0, started.event, history.task_scheduled(T0, 0, "say", '"Tokyo"'),
                             history.timer_created(T0, 1, T0 + timedelta(hours=1)))
    cp = Checkpoint(instance_id, created.etag, state(instance_id, runtime_status=RuntimeStatus.Running,
                                                     custom_status='{"step":1}'),
                    consumed=[started], new_events=events,
                    activities=[ActivityItem(instance_id, "e1", 0, "say", '"Tokyo"')])
    await store.checkpoint(cp)
    return cp


def test_history_and_instance_rows(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    run(first_episode(azure_store, "order/1"))
    tables, _, _ = clients(azurite)
    hub = azure_store.names.hub
    assert {f"{hub}History", f"{hub}Instances", f"{hub}Partitions"} <= {t.name for t in tables.list_tables()}
    found = list(tables.get_table_client(f"{hub}History").query_entities("PartitionKey eq 'order^01'"))
    outbox = [row for row in found if row["RowKey"].startswith("outbox-")]  # sent; deleted by the next checkpoint
    found = [row for row in found if row not in outbox]
    assert len(outbox) == 1 and all("ExecutionId" not in row for row in outbox)  # readers by execution skip it
    assert [row["RowKey"] for row in found] == [f"{index:016X}" for index in range(5)] + ["sentinel"]
    started, scheduled, timer = found[1], found[2], found[3]
    assert (found[0]["EventType"], found[0]["EventId"], found[0]["IsPlayed"]) == ("OrchestratorStarted", -1, False)
    assert found[0]["_Timestamp"] == T0 and found[0]["ExecutionId"] == "e1"
    assert started["EventType"] == "ExecutionStarted" and started["Name"] == "hello"
    assert json.loads(started["OrchestrationInstance"]) == {"InstanceId": "order/1", "ExecutionId": "e1"}
    assert started["ParentInstance"] == "null" and started["Tags"] == "null"
    assert started["GenerateNewTrace"] is False                          # §3.2: the current DTCore members
    assert (scheduled["Tags"], scheduled["ParentTraceContext"]) == ("null", "null")
    assert (scheduled["EventType"], scheduled["EventId"], scheduled["Name"], scheduled["Input"]) == (
        "TaskScheduled", 0, "say", '["\\"Tokyo\\""]')
    assert timer["EventType"] == "TimerCreated" and timer["FireAt"] == T0 + timedelta(hours=1)
    sentinel = found[-1]
    assert sentinel["ExecutionId"] == "e1" and sentinel["IsCheckpointComplete"] is True
    assert isinstance(sentinel["CheckpointCompletedTimestamp"], datetime)

    row = tables.get_table_client(f"{hub}Instances").get_entity("order^01", "")
    assert {key: row[key] for key in ("Name", "Version", "ExecutionId", "RuntimeStatus", "Input",
                                      "CustomStatus", "TaskHubName", "Generation")} == {
        "Name": "hello", "Version": "", "ExecutionId": "e1", "RuntimeStatus": "Running",
        "Input": '"\\"Tokyo\\""', "CustomStatus": '{"step":1}', "TaskHubName": hub, "Generation": 0}
    assert row["CreatedTime"] == T0 and "Output" not in row
    assert row["Tags"] == "null"                                         # §4.2: JSON or "null"


def test_completed_instance_columns(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    cp = run(first_episode(azure_store, "done"))
    done = history.execution_completed(T0, 3, RuntimeStatus.Completed.number, '"ok"')
    final = Checkpoint("done", cp.state.etag, state("done", runtime_status=RuntimeStatus.Completed,
                                                    output='"ok"', last_updated_time=T0 + timedelta(seconds=5)),
                       new_events=history.episode(T0, done))
    run(azure_store.checkpoint(final))
    tables, _, _ = clients(azurite)
    hub = azure_store.names.hub
    rows = list(tables.get_table_client(f"{hub}History").query_entities(
        "PartitionKey eq 'done' and ExecutionId eq 'e1' and EventType eq 'ExecutionCompleted'"))
    assert [(row["OrchestrationStatus"], row["Result"], row["RowKey"]) for row in rows] == [
        ("Completed", '"ok"', "0000000000000006")]
    row = tables.get_table_client(f"{hub}Instances").get_entity("done", "")
    assert (row["RuntimeStatus"], row["Output"], row["CustomStatus"]) == ("Completed", '"ok"', "null")
    assert row["CompletedTime"] == T0 + timedelta(seconds=5)
    assert run(azure_store.get_history("done"))[-2] == done


def test_messages_are_routed_by_hash(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    ids = ["abc", "@counter@key1", "x", "y", "z"]
    run(azure_store.send_messages([Message(i, history.event_raised(T0, "go", '"1"')) for i in ids]))
    _, queues, _ = clients(azurite)
    seen: dict[str, str] = {}
    for queue in azure_store.names.control_queues:
        for message in queues.get_queue_client(queue).peek_messages(max_messages=32):
            body = json.loads(message.content)
            assert body["$type"] == "DurableTask.AzureStorage.MessageData"
            event = body["TaskMessage"]["Event"]
            assert (event["$type"], event["EventType"]) == ("DurableTask.Core.History.EventRaisedEvent", 15)
            assert body["Sender"] == {"InstanceId": "", "ExecutionId": ""}    # §5.3: a client send
            seen[body["TaskMessage"]["OrchestrationInstance"]["InstanceId"]] = queue
    hub = azure_store.names.hub.lower()
    assert seen == {i: f"{hub}-control-{fnv1a_32(i) % 4:02d}" for i in ids}
    assert seen["abc"].endswith("-03") and seen["@counter@key1"].endswith("-01")


def test_activities_go_to_the_work_item_queue(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    run(first_episode(azure_store, "act"))
    _, queues, _ = clients(azurite)
    [peeked] = queues.get_queue_client(azure_store.names.workitems_queue).peek_messages()
    body = json.loads(peeked.content)
    task = body["TaskMessage"]
    assert task["OrchestrationInstance"]["InstanceId"] == "act"
    assert body["Sender"] == {"InstanceId": "act", "ExecutionId": "e1"}    # §5.3: sent by the orchestration
    assert (task["Event"]["EventType"], task["Event"]["Name"], task["Event"]["Input"]) == (
        4, "say", '["\\"Tokyo\\""]')
    [item] = run(azure_store.fetch_activities(5))
    assert (item.instance_id, item.execution_id, item.task_id, item.input) == ("act", "e1", 0, '"Tokyo"')


def test_large_queue_message_goes_to_a_blob(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    big = json.dumps("x" * 60_000)
    run(azure_store.send_messages([Message("big", history.event_raised(T0, "load", big))]))
    _, queues, blobs = clients(azurite)
    queue = azure_store.queues.control_queue("big")
    [peeked] = queues.get_queue_client(queue).peek_messages()
    wrapper = json.loads(peeked.content)
    name = wrapper["CompressedBlobName"]
    assert wrapper["TaskMessage"] is None and name.startswith("big/message-")
    assert name.endswith("-EventRaised.json.gz")
    container = blobs.get_container_client(azure_store.names.largemessages_container)
    stored = json.loads(gzip.decompress(container.download_blob(name).readall()))
    assert stored["TaskMessage"]["Event"]["Input"] == big
    [message] = run(azure_store.pending_messages("big", T0))
    assert message.event["Input"] == big
    run(azure_store.checkpoint(Checkpoint("big", None, state("big"), consumed=[message])))
    assert [blob.name for blob in container.list_blobs()] == []


def test_large_columns_go_to_blobs(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    big = json.dumps("y" * 40_000)
    run(azure_store.create_instance(state("wide", input=big), start("wide", big)))
    created = run(azure_store.get_instance("wide"))
    events = history.episode(T0, history.execution_started(T0, "hello", "wide", "e1", big))
    run(azure_store.checkpoint(Checkpoint("wide", created.etag, state("wide", input=big), new_events=events)))
    tables, _, _ = clients(azurite)
    hub = azure_store.names.hub
    row = tables.get_table_client(f"{hub}History").get_entity("wide", "0000000000000001")
    assert row["Input"] == "" and row["InputBlobName"].startswith("wide/history-0000000000000001-ExecutionStarted-")
    instance = tables.get_table_client(f"{hub}Instances").get_entity("wide", "")
    assert instance["Input"].startswith(f"{azurite.blob_endpoint}/devstoreaccount1/{hub.lower()}-largemessages/")
    assert run(azure_store.get_history("wide")) == events
    assert run(azure_store.get_instance("wide")).input == big


def test_stale_checkpoint_on_a_moved_sentinel(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    cp = run(first_episode(azure_store, "race"))
    tables, _, _ = clients(azurite)
    history_table = tables.get_table_client(f"{azure_store.names.hub}History")
    history_table.update_entity({"PartitionKey": "race", "RowKey": "sentinel", "Touched": True},
                                mode=UpdateMode.MERGE)    # another worker wrote: the ETag moved (412)
    late = Checkpoint("race", cp.state.etag, state("race", output='"late"'), new_events=history.episode(T0),
                      messages=[Message("other", history.event_raised(T0, "x", None))])
    with pytest.raises(StaleCheckpointError, match="'race'"):
        run(azure_store.checkpoint(late))
    assert len(run(azure_store.get_history("race"))) == 5
    assert run(azure_store.pending_messages("other", T0)) == []


def test_long_checkpoint_spans_transactions(azure_store: AzureStore, run: Run) -> None:
    run(azure_store.create_instance(state("long"), start("long")))
    created = run(azure_store.get_instance("long"))
    events = history.episode(T0, *[history.generic_event(T0, str(i)) for i in range(248)])
    cp = Checkpoint("long", created.etag, state("long"), new_events=events)
    run(azure_store.checkpoint(cp))
    assert run(azure_store.get_history("long")) == events
    assert cp.state.etag.event_count == 250


def test_unsent_outbox_is_sent_by_the_next_reader(azurite: Azurite, azure_store: AzureStore, run: Run,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash after the history commit and before the sends: the outbox rows survive and are sent."""
    send = azure_store.messaging.send

    async def crash(outgoing: list[Any]) -> None:
        if any(entry.queue == azure_store.names.workitems_queue for entry in outgoing):
            raise ConnectionError("process died")
        await send(outgoing)
    with monkeypatch.context() as patch:
        patch.setattr(azure_store.messaging, "send", crash)
        with pytest.raises(ConnectionError):
            run(first_episode(azure_store, "crash"))
    tables, _, _ = clients(azurite)
    outbox = list(tables.get_table_client(f"{azure_store.names.hub}History").query_entities(
        "PartitionKey eq 'crash' and RowKey ge 'outbox-' and RowKey lt 'outbox.'"))
    assert len(outbox) == 1
    assert run(azure_store.fetch_activities(5)) == []
    monkeypatch.setattr(azure_module, "OUTBOX_RECOVERY_AGE", 0.0)
    reader = AzureStore(azurite.connection_string, azure_store.names.hub)   # another process
    run(reader.open())
    try:
        assert len(run(reader.get_history("crash"))) == 5
        assert [item.name for item in run(reader.fetch_activities(5))] == ["say"]
    finally:
        run(reader.close())
    assert not list(tables.get_table_client(f"{azure_store.names.hub}History").query_entities(
        "PartitionKey eq 'crash' and RowKey ge 'outbox-' and RowKey lt 'outbox.'"))


def test_future_timer_waits_in_the_queue_until_the_clock_reaches_it(azurite: Azurite, azure_store: AzureStore,
                                                                    run: Run) -> None:
    due = datetime.now(timezone.utc) + timedelta(hours=3)
    timer = Message("sleepy", history.timer_fired(due, 1, due), visible_time=due)
    run(azure_store.send_messages([timer]))
    _, queues, _ = clients(azurite)
    client = queues.get_queue_client(azure_store.queues.control_queue("sleepy"))
    assert client.get_queue_properties().approximate_message_count == 1
    assert list(client.peek_messages()) == []             # invisible: a real 3-hour visibility delay
    assert run(azure_store.next_visible_time()) == due
    assert run(azure_store.ready_instances(due - timedelta(seconds=1), 10)) == []
    assert run(azure_store.ready_instances(due, 10)) == ["sleepy"]    # time skipping: fetched early
    [message] = run(azure_store.pending_messages("sleepy", due))
    assert message.event["TimerId"] == 1 and message.visible_time == due


def test_reads_base64_messages_of_older_providers(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    body = {"$type": "DurableTask.AzureStorage.MessageData", "ActivityId": "5406d369-0000-0000-0000-000000000000",
            "TaskMessage": {"$type": "DurableTask.Core.TaskMessage",
                            "Event": {"$type": "DurableTask.Core.History.EventRaisedEvent", "EventType": 15,
                                      "Name": "approve", "Input": "true", "EventId": -1, "IsPlayed": False,
                                      "Timestamp": "2023-03-24T20:53:05.9093518Z"},
                            "SequenceNumber": 0,
                            "OrchestrationInstance": {"$type": "DurableTask.Core.OrchestrationInstance",
                                                      "InstanceId": "legacy", "ExecutionId": None}},
            "CompressedBlobName": None, "SequenceNumber": 40}
    _, queues, _ = clients(azurite)
    queues.get_queue_client(azure_store.queues.control_queue("legacy")).send_message(
        base64.b64encode(json.dumps(body).encode()).decode())
    [message] = run(azure_store.pending_messages("legacy", T0))
    assert (message.event["Name"], message.event["Input"], message.execution_id) == ("approve", "true", None)
    assert "$type" not in message.event


def test_engine_polls_at_the_configured_interval(azurite: Azurite, hub_name: str) -> None:
    store = AzureStore(azurite.connection_string, hub_name, max_queue_polling_interval=0.5)
    assert store.poll_interval == 0.5


def test_held_leases_are_renewed(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    run(azure_store.send_messages([Message("held", history.event_raised(T0, "go", None))]))
    [message] = run(azure_store.pending_messages("held", T0))
    held = azure_store.messaging.inbox.held[message.message_id]
    receipt, held.lease_until = held.pop_receipt, time.monotonic() + 1   # about to run out
    run(azure_store.messaging.renew_expiring())
    assert held.pop_receipt != receipt and held.lease_until > time.monotonic() + azure_store.queues.lease - 5
    run(azure_store.checkpoint(Checkpoint("held", None, state("held"), consumed=[message])))
    _, queues, _ = clients(azurite)
    queue = queues.get_queue_client(azure_store.queues.control_queue("held"))
    assert queue.get_queue_properties().approximate_message_count == 0


def test_close_gives_back_held_messages(azurite: Azurite, azure_store: AzureStore, hub_name: str,
                                        run: Run) -> None:
    first = AzureStore(azurite.connection_string, hub_name)
    run(first.open())
    run(first.send_messages([Message("handover", history.event_raised(T0, "go", None))]))
    assert len(run(first.pending_messages("handover", T0))) == 1
    assert run(azure_store.pending_messages("handover", T0)) == []     # leased by `first`
    run(first.close())                                                  # a clean restart
    assert len(run(azure_store.pending_messages("handover", T0))) == 1


def test_malformed_connection_string_is_one_clear_error(run: Run) -> None:
    with pytest.raises(FuncemuError, match="connection string is not valid"):
        run(AzureStore("not a connection string", "LocalHub").open())


def test_endpoint_that_never_answers_is_one_clear_error(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:     # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        monkeypatch.setattr(azure_module, "PROBE_READ_TIMEOUT", 0.5)
        connection = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                      f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
                      f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
                      f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
        with pytest.raises(StorageUnreachableError, match=f"table endpoint http://127.0.0.1:{port}/devstoreaccount1: "
                                                          "no answer within 0.5 s"):
            run(AzureStore(connection, "LocalHub").open())


def test_a_reused_id_starts_the_next_generation(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    """§4.2: Generation is previous+1 when an ID is reused; the ExecutionStarted (queue message and
    History row, §3.2) carries the generation the row gets."""
    run(first_episode(azure_store, "c1"))
    again = history.execution_started(T0, "hello", "c1", "e2", '"\\"Tokyo\\""')
    run(azure_store.create_instance(state("c1", execution_id="e2"), Message("c1", again, "e2")))
    _, queues, _ = clients(azurite)
    [peeked] = queues.get_queue_client(azure_store.queues.control_queue("c1")).peek_messages(max_messages=32)
    assert json.loads(peeked.content)["TaskMessage"]["Event"]["Generation"] == 1
    [started] = run(azure_store.pending_messages("c1", T0))
    assert started.event["Generation"] == 1 and again["Generation"] == 0  # the caller's event is not changed
    created = run(azure_store.get_instance("c1"))
    run(azure_store.checkpoint(Checkpoint("c1", created.etag, state("c1", execution_id="e2",
                                                                    runtime_status=RuntimeStatus.Running),
                                          consumed=[started], new_events=history.episode(T0, started.event),
                                          replace_history=True)))
    tables, _, _ = clients(azurite)
    hub = azure_store.names.hub
    row = tables.get_table_client(f"{hub}History").get_entity("c1", "0000000000000001")
    assert (row["EventType"], row["ExecutionId"], row["Generation"]) == ("ExecutionStarted", "e2", 1)
    assert tables.get_table_client(f"{hub}Instances").get_entity("c1", "")["Generation"] == 1


def test_an_input_in_a_start_message_blob_is_the_started_input(azurite: Azurite, azure_store: AzureStore,
                                                               run: Run) -> None:
    """§2.4: an Instances Input URL ending `ExecutionStarted.json.gz` names a whole queue message (a start
    too large for the queue); the input is its ExecutionStartedEvent.Input."""
    big = json.dumps("z" * 50_000)
    run(azure_store.create_instance(state("huge", input=big), start("huge", big)))
    name = "huge/message-0123456789abcdef0123456789abcdef-ExecutionStarted.json.gz"
    body = {"$type": "DurableTask.AzureStorage.MessageData", "ActivityId": "01234567-89ab-cdef-0123-456789abcdef",
            "TaskMessage": {"$type": "DurableTask.Core.TaskMessage",
                            "Event": {"$type": "DurableTask.Core.History.ExecutionStartedEvent", "EventType": 0,
                                      "Name": "hello", "Input": big, "Generation": 0, "EventId": -1,
                                      "IsPlayed": False, "Timestamp": "2024-01-01T00:00:00Z",
                                      "OrchestrationInstance": {"InstanceId": "huge", "ExecutionId": "e1"}},
                            "SequenceNumber": 0,
                            "OrchestrationInstance": {"InstanceId": "huge", "ExecutionId": "e1"}},
            "CompressedBlobName": None, "SequenceNumber": 1}
    run(azure_store.blobs.upload(name, json.dumps(body)))
    tables, _, _ = clients(azurite)
    instances = tables.get_table_client(f"{azure_store.names.hub}Instances")
    instances.update_entity({"PartitionKey": "huge", "RowKey": "", "Input": azure_store.blobs.url_for(name)},
                            mode=UpdateMode.MERGE)   # what the provider's client writes for such a start
    assert run(azure_store.get_instance("huge")).input == big
    [listed], _ = run(azure_store.query_instances(InstanceQuery(instance_id_prefix="huge")))
    assert listed.input == big
