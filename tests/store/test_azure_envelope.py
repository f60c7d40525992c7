"""Queue envelopes and history/instance rows as the real provider writes them (docs/azure-storage-taskhub.md
§2.3, §3.2, §4.2, §5.3), checked without Azurite."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from funcemu.durable import history
from funcemu.durable.store import azure_envelope as envelopes
from funcemu.durable.store import azure_rows as rows
from funcemu.durable.store.base import ActivityItem, InstanceState, Message, RuntimeStatus

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
DICTIONARY = ("System.Collections.Generic.Dictionary`2[[System.String, System.Private.CoreLib],"
              "[System.String, System.Private.CoreLib]]")
PARENT = {"Name": "outer", "Version": "", "TaskScheduleId": 3,
          "OrchestrationInstance": {"InstanceId": "parent", "ExecutionId": "pe"}}


def untyped_objects(value: Any, path: str = "") -> list[str]:
    """Paths of JSON objects without `$type`, `Sender` excepted (TypeNameHandling.None, §5.3)."""
    if isinstance(value, list):
        return [found for item in value for found in untyped_objects(item, path)]
    if not isinstance(value, dict):
        return []
    missing = [] if "$type" in value or path.endswith(".Sender") else [path]
    return missing + [found for key, item in value.items() for found in untyped_objects(item, f"{path}.{key}")]


def round_trip(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelopes.loads(envelopes.dumps(envelope))


def test_client_start_has_the_client_sender_and_no_episode() -> None:
    event = history.execution_started(T0, "hello", "i1", "e1", '"x"')
    envelope = round_trip(envelopes.message_envelope(Message("i1", event, "e1")))
    assert envelope["Sender"] == {"InstanceId": "", "ExecutionId": ""}
    assert "Episode" not in envelope
    assert untyped_objects(envelope) == []
    assert list(envelope)[:6] == ["$type", "ActivityId", "TaskMessage", "CompressedBlobName", "SequenceNumber",
                                  "Sender"]


def test_every_object_carries_its_dotnet_type() -> None:
    """§2.3: TypeNameHandling.Objects; names as the spec and DTCore give them."""
    event = {**history.execution_started(T0, "inner", "child", "ce", None, PARENT), "Tags": {"a": "b"}}
    envelope = round_trip(envelopes.message_envelope(Message("child", event, "ce")))
    assert untyped_objects(envelope) == []
    task = envelope["TaskMessage"]
    assert task["$type"] == "DurableTask.Core.TaskMessage"
    assert task["OrchestrationInstance"]["$type"] == "DurableTask.Core.OrchestrationInstance"
    started = task["Event"]
    assert started["$type"] == "DurableTask.Core.History.ExecutionStartedEvent"
    assert started["ParentInstance"]["$type"] == "DurableTask.Core.ParentInstance"
    assert started["ParentInstance"]["OrchestrationInstance"] == {
        "$type": "DurableTask.Core.OrchestrationInstance", "InstanceId": "parent", "ExecutionId": "pe"}
    assert started["Tags"] == {"$type": DICTIONARY, "a": "b"}
    assert list(started)[0] == "$type"


def test_failure_details_are_typed_to_the_innermost() -> None:
    failure = {"ErrorType": "E", "ErrorMessage": "m", "StackTrace": None,
               "InnerFailure": {"ErrorType": "I", "ErrorMessage": "n", "InnerFailure": None}}
    event = history.execution_completed(T0, 4, RuntimeStatus.Failed.number, "m", failure)
    envelope = round_trip(envelopes.message_envelope(Message("i1", event, "e1")))
    details = envelope["TaskMessage"]["Event"]["FailureDetails"]
    assert details["$type"] == details["InnerFailure"]["$type"] == "DurableTask.Core.FailureDetails"
    assert untyped_objects(envelope) == []


def test_senders_the_event_tells() -> None:
    """A sub-orchestration start comes from its parent; timers and activity results from the target
    orchestration itself (the provider's activity session is the orchestration's instance)."""
    child = Message("child", history.execution_started(T0, "inner", "child", "ce", None, PARENT), "ce")
    timer = Message("i1", history.timer_fired(T0, 1, T0), "e1", visible_time=T0)
    result = Message("i1", history.task_completed(T0, 0, '"ok"'), "e1")
    raised = Message("i1", history.event_raised(T0, "go", None))
    assert [envelopes.message_envelope(m)["Sender"] for m in (child, timer, result, raised)] == [
        {"InstanceId": "parent", "ExecutionId": "pe"}, {"InstanceId": "i1", "ExecutionId": "e1"},
        {"InstanceId": "i1", "ExecutionId": "e1"}, {"InstanceId": "", "ExecutionId": ""}]


def test_a_known_sender_and_episode_are_written() -> None:
    message = Message("other", history.event_raised(T0, "go", None))
    envelope = envelopes.message_envelope(message, sender=("me", "e7"), episode=3)
    assert (envelope["Sender"], envelope["Episode"]) == ({"InstanceId": "me", "ExecutionId": "e7"}, 3)
    item = envelopes.activity_envelope(ActivityItem("i1", "e1", 0, "say", '"x"'), episode=2)
    assert (item["Sender"], item["Episode"]) == ({"InstanceId": "i1", "ExecutionId": "e1"}, 2)
    assert untyped_objects(round_trip(item)) == []


def test_sequence_numbers_count_per_process() -> None:
    """§5.3: a per-process counter (a tie-breaker only); the send order is funcemu's own member."""
    message = Message("i1", history.event_raised(T0, "go", None))
    first, second = envelopes.message_envelope(message), envelopes.message_envelope(message)
    assert 0 < first["SequenceNumber"] < second["SequenceNumber"] < 10**9
    assert envelopes.order_key(first, T0) < envelopes.order_key(second, T0)
    assert envelopes.order_key(first, None) == first[envelopes.SEND_ORDER]


def test_order_of_older_funcemu_and_provider_messages() -> None:
    older = {"SequenceNumber": 17_000_000_000_000_000}      # funcemu's former tick sequence numbers
    assert envelopes.order_key(older, T0) == older["SequenceNumber"]
    provider = {"SequenceNumber": 40}                        # InsertedOn, then SequenceNumber (§5.5)
    assert envelopes.order_key(provider, T0) == int(T0.timestamp() * 10**7) + 40
    assert envelopes.order_key(provider, T0) < envelopes.order_key({"SequenceNumber": 41}, T0)


def test_reads_written_older_and_provider_messages() -> None:
    event = history.execution_started(T0, "inner", "child", "ce", '"x"', PARENT)
    written = envelopes.to_message(round_trip(envelopes.message_envelope(Message("child", event, "ce"))), "m1")
    assert (written.instance_id, written.execution_id, written.event) == ("child", "ce", event)
    older = {"$type": envelopes.MESSAGE_DATA, "ActivityId": "a",
             "TaskMessage": {"$type": envelopes.TASK_MESSAGE, "Event": {"$type": "x", **event}, "SequenceNumber": 0,
                             "OrchestrationInstance": {"$type": envelopes.INSTANCE_TYPE, "InstanceId": "child",
                                                       "ExecutionId": "ce"}},
             "CompressedBlobName": None, "SequenceNumber": 17_000_000_000_000_000}
    assert envelopes.to_message(older, "m2").event == event
    provider = json.loads(
        '{"$type":"DurableTask.AzureStorage.MessageData","ActivityId":"5406d369-4369-4673-afae-6671a2fa1e57",'
        '"TaskMessage":{"$type":"DurableTask.Core.TaskMessage","Event":{"$type":'
        '"DurableTask.Core.History.ExecutionStartedEvent","OrchestrationInstance":{"$type":'
        '"DurableTask.Core.OrchestrationInstance","InstanceId":"i2","ExecutionId":"aae3"},"EventType":0,'
        '"ParentInstance":null,"Name":"OrchestrationName","Version":"2.0","Input":"input","Tags":{"$type":"'
        + DICTIONARY + '","tag1":"tagValue"},"Correlation":null,"ScheduledStartTime":null,"Generation":0,'
        '"EventId":-1,"IsPlayed":false,"Timestamp":"2023-03-24T20:53:05.9093518Z"},"SequenceNumber":0,'
        '"OrchestrationInstance":{"$type":"DurableTask.Core.OrchestrationInstance","InstanceId":"i2",'
        '"ExecutionId":"aae3"}},"CompressedBlobName":null,"SequenceNumber":40,'
        '"Sender":{"InstanceId":"","ExecutionId":""},"SerializableTraceContext":null}')
    read = envelopes.to_message(provider, "m3")
    assert (read.instance_id, read.execution_id, read.event["Tags"]) == ("i2", "aae3", {"tag1": "tagValue"})
    assert read.event["OrchestrationInstance"] == {"InstanceId": "i2", "ExecutionId": "aae3"}


def test_wrapper_keeps_the_send_order() -> None:
    envelope = envelopes.message_envelope(Message("i1", history.event_raised(T0, "go", None)))
    wrapper = envelopes.wrapper_envelope(envelope, "i1/message-x-EventRaised.json.gz")
    assert wrapper[envelopes.SEND_ORDER] == envelope[envelopes.SEND_ORDER]
    assert wrapper["TaskMessage"] is None and "Sender" not in wrapper


# rows (§3.2, §4.2)


def test_history_rows_carry_the_members_of_current_events() -> None:
    started = history.execution_started(T0, "hello", "i1", "e1", '"x"')
    scheduled = history.task_scheduled(T0, 0, "say", '"x"')
    created = history.sub_orchestration_created(T0, 1, "inner", "child", None)
    raised = history.event_raised(T0, "go", None)
    entities = [rows.event_entity(event, "i1", rows.row_key(index), "e1")
                for index, event in enumerate((started, scheduled, created, raised))]
    assert entities[0]["GenerateNewTrace"] is False and entities[0]["Tags"] == "null"
    assert (entities[1]["Tags"], entities[1]["ParentTraceContext"]) == ("null", "null")
    assert entities[2]["Tags"] == "null" and "ClientSpanId" not in entities[2]   # a null string: no column
    assert entities[3]["ParentTraceContext"] == "null"
    assert [rows.entity_event(entity) for entity in entities] == [started, scheduled, created, raised]


def test_provider_rows_read_with_their_members_at_other_values() -> None:
    entity = rows.event_entity(history.task_scheduled(T0, 0, "say", None), "i1", rows.row_key(0), "e1")
    entity["Tags"] = json.dumps({"k": "v"})
    assert rows.entity_event(entity)["Tags"] == {"k": "v"}
    started = rows.event_entity(history.execution_started(T0, "hello", "i1", "e1", None), "i1", "0", "e1")
    started["GenerateNewTrace"] = True
    assert rows.entity_event(started)["GenerateNewTrace"] is True


def test_instance_row_tags_are_the_null_form() -> None:
    state = InstanceState(instance_id="i1", name="hello", execution_id="e1", runtime_status=RuntimeStatus.Running,
                          created_time=T0, last_updated_time=T0)
    assert rows.instance_entity(state, "Hub", rows.HubEtag(None))["Tags"] == "null"
