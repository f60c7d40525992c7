"""Queue message bodies: DurableTask.AzureStorage's `MessageData` JSON (docs/azure-storage-taskhub.md §5.3).

Bodies are written as raw UTF-8 JSON (DT.AS 2.x / Durable Functions 3.x, the default of current extension
bundles) and read raw or Base64. Objects carry Newtonsoft `$type` names (TypeNameHandling.Objects: every
object and dictionary, except `Sender`) and enums are integers, so the real provider can read what funcemu
writes. Times are Newtonsoft's round-trip text, which trims trailing zeros (so at most 6 fractional digits
from Python's microseconds). funcemu adds `FuncemuVisibleTime` (the `Message.visible_time`, which queue
visibility only approximates to the second) and `FuncemuSendOrder` (see `order_key`); other readers ignore
unknown members.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any, TypeAlias

from funcemu.durable.history import EventType, format_time, parse_time
from funcemu.durable.store.base import ActivityItem, Message

MESSAGE_DATA = "DurableTask.AzureStorage.MessageData"
TASK_MESSAGE = "DurableTask.Core.TaskMessage"
INSTANCE_TYPE = "DurableTask.Core.OrchestrationInstance"
STRING_DICTIONARY = ("System.Collections.Generic.Dictionary`2[[System.String, System.Private.CoreLib],"
                     "[System.String, System.Private.CoreLib]]")
OBJECT_DICTIONARY = ("System.Collections.Generic.Dictionary`2[[System.String, System.Private.CoreLib],"
                     "[System.Object, System.Private.CoreLib]]")
FAILURE_TYPE = "DurableTask.Core.FailureDetails"
# The .NET types of the object members of DTCore events and TaskMessage (dictionaries are not recursed into).
MEMBER_TYPES = {"OrchestrationInstance": INSTANCE_TYPE, "ParentInstance": "DurableTask.Core.ParentInstance",
                "Tags": STRING_DICTIONARY, "OrchestrationTags": STRING_DICTIONARY,
                "FailureDetails": FAILURE_TYPE, "InnerFailure": FAILURE_TYPE, "Properties": OBJECT_DICTIONARY,
                "ParentTraceContext": "DurableTask.Core.Tracing.DistributedTraceContext",
                "OrchestrationExecutionContext": "DurableTask.Core.OrchestrationExecutionContext"}
DICTIONARIES = frozenset({STRING_DICTIONARY, OBJECT_DICTIONARY})
VISIBLE_TIME = "FuncemuVisibleTime"
SEND_ORDER = "FuncemuSendOrder"
NO_ACTIVITY = "00000000-0000-0000-0000-000000000000"
QUEUE_MESSAGE_LIMIT = 45 * 1024   # UTF-8 bytes; larger bodies go to a blob (§2.4)
_TICK_FLOOR = 10**16              # older funcemu sequence numbers were 100-ns ticks since 1970, far above this
_SEQUENCE = itertools.count(1)    # the provider's per-process `SequenceNumber` counter (§5.3)
# Who sent a message: (InstanceId, ExecutionId); clients send as ("", "") (§5.3).
Sender: TypeAlias = tuple[str, str | None]
CLIENT: Sender = ("", "")
_OWN_EVENTS = frozenset({EventType.TaskScheduled, EventType.TaskCompleted, EventType.TaskFailed,
                         EventType.TimerFired})


class _SendOrder:
    """Per-process increasing 100-ns Unix ticks: they order sends across processes too, where the queue's
    `InsertedOn` (whole seconds) and the per-process `SequenceNumber` cannot."""

    last = 0

    @classmethod
    def next(cls) -> int:
        cls.last = max(cls.last + 1, time.time_ns() // 100)
        return cls.last


def next_sequence() -> int:
    return next(_SEQUENCE)


def order_key(envelope: dict[str, Any], inserted_on: datetime | None) -> int:
    """Send order: our send ticks (older funcemu messages: their tick sequence numbers), else (other
    writers) the queue's insertion time, then `SequenceNumber` as the provider sorts (§5.5)."""
    if isinstance(envelope.get(SEND_ORDER), int):
        return int(envelope[SEND_ORDER])
    sequence = envelope.get("SequenceNumber") or 0
    if sequence >= _TICK_FLOOR or inserted_on is None:
        return int(sequence)
    return int(inserted_on.timestamp() * 10**7) + int(sequence) % 10**7


def event_class(event_type: int) -> str:
    name = EventType(event_type).name
    return f"DurableTask.Core.History.{name if name == 'GenericEvent' else name + 'Event'}"


def message_envelope(message: Message, sender: Sender | None = None, episode: int | None = None) -> dict[str, Any]:
    """`sender`/`episode`: the sending orchestration and its episode (count of OrchestratorStarted) when
    the caller knows them; else the sender is inferred where the event tells it (see `sender_of`)."""
    return _envelope(message.instance_id, message.execution_id, message.event, message.visible_time,
                     sender or sender_of(message), episode)


def activity_envelope(item: ActivityItem, episode: int | None = None) -> dict[str, Any]:
    """A work item is a TaskScheduled event for the orchestration; its input is a JSON array (§5)."""
    event = {"EventType": int(EventType.TaskScheduled), "EventId": item.task_id, "IsPlayed": False,
             "Timestamp": format_time(datetime.now(timezone.utc)), "Name": item.name, "Version": "",
             "Input": json.dumps([item.input]) if item.input is not None else None}
    return _envelope(item.instance_id, item.execution_id, event, None, (item.instance_id, item.execution_id),
                     episode)


def sender_of(message: Message) -> Sender:
    """What the event tells of its sender: a work item, an activity result or a timer is the target
    orchestration's own; a sub-orchestration start comes from its parent; anything else is sent as a
    client would (the provider requires a sender, and reads its InstanceId for EventRaised)."""
    event = message.event
    if event.get("EventType") in _OWN_EVENTS:
        return message.instance_id, message.execution_id
    parent = (event.get("ParentInstance") or {}).get("OrchestrationInstance")
    if event.get("EventType") == EventType.ExecutionStarted and isinstance(parent, dict) and parent.get("InstanceId"):
        return str(parent["InstanceId"]), parent.get("ExecutionId")
    return CLIENT


def _envelope(instance_id: str, execution_id: str | None, event: dict[str, Any],
              visible_time: datetime | None, sender: Sender, episode: int | None) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "$type": MESSAGE_DATA, "ActivityId": str(uuid.uuid4()),
        "TaskMessage": typed({
            "Event": typed(event, event_class(event["EventType"])), "SequenceNumber": 0,
            "OrchestrationInstance": {"InstanceId": instance_id, "ExecutionId": execution_id},
            "OrchestrationExecutionContext": None}, TASK_MESSAGE),
        "CompressedBlobName": None, "SequenceNumber": next_sequence()}
    if episode is not None:
        envelope["Episode"] = episode
    envelope["Sender"] = {"InstanceId": sender[0], "ExecutionId": sender[1]}   # no `$type` (TypeNameHandling.None)
    envelope["SerializableTraceContext"] = None
    envelope[SEND_ORDER] = _SendOrder.next()
    if visible_time is not None:
        envelope[VISIBLE_TIME] = format_time(visible_time)
    return envelope


def typed(value: dict[str, Any], type_name: str) -> dict[str, Any]:
    """`value` as Newtonsoft writes a `type_name` object: `$type` first, known object members typed too."""
    if type_name in DICTIONARIES:
        return {"$type": type_name, **{key: item for key, item in value.items() if key != "$type"}}
    result: dict[str, Any] = {"$type": type_name}
    for key, item in value.items():
        if key != "$type":
            member = MEMBER_TYPES.get(key)
            result[key] = typed(item, member) if member and isinstance(item, dict) else item
    return result


def wrapper_envelope(envelope: dict[str, Any], blob_name: str) -> dict[str, Any]:
    """What the queue carries when the real message is in a blob: only `CompressedBlobName` matters."""
    wrapper = {"$type": MESSAGE_DATA, "ActivityId": NO_ACTIVITY, "TaskMessage": None,
               "CompressedBlobName": blob_name, "SequenceNumber": envelope["SequenceNumber"],
               "SerializableTraceContext": None}
    wrapper.update({name: envelope[name] for name in (SEND_ORDER, VISIBLE_TIME) if name in envelope})
    return wrapper


def large_blob_name(envelope: dict[str, Any]) -> str:
    """`{instanceId}/message-{activityId:N}-{EventType}.json.gz`, the provider's name (§2.4)."""
    task = envelope["TaskMessage"]
    event_name = EventType(task["Event"]["EventType"]).name
    activity = envelope["ActivityId"].replace("-", "")
    return f"{task['OrchestrationInstance']['InstanceId']}/message-{activity}-{event_name}.json.gz"


def dumps(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def loads(body: str) -> dict[str, Any]:
    """A queue body: raw JSON, or Base64 of it (DT.AS 1.x writes Base64)."""
    text = body.strip()
    if not text.startswith("{"):
        text = base64.b64decode(text).decode("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def visible_time(envelope: dict[str, Any]) -> datetime | None:
    if envelope.get(VISIBLE_TIME):
        return parse_time(envelope[VISIBLE_TIME])
    event = (envelope.get("TaskMessage") or {}).get("Event") or {}
    if event.get("EventType") == EventType.TimerFired and event.get("FireAt"):
        return parse_time(event["FireAt"])
    return None


def to_message(envelope: dict[str, Any], message_id: str) -> Message:
    task = envelope["TaskMessage"]
    target = task["OrchestrationInstance"]
    return Message(instance_id=target["InstanceId"], event=_untyped(task["Event"]),
                   execution_id=target.get("ExecutionId"), visible_time=visible_time(envelope),
                   message_id=message_id)


def to_activity(envelope: dict[str, Any], item_id: str, dequeue_count: int) -> ActivityItem:
    task = envelope["TaskMessage"]
    event, target = task["Event"], task["OrchestrationInstance"]
    stored = event.get("Input")
    arguments = json.loads(stored) if stored else None
    value = arguments[0] if isinstance(arguments, list) and arguments else None
    return ActivityItem(instance_id=target["InstanceId"], execution_id=target.get("ExecutionId") or "",
                        task_id=event["EventId"], name=event.get("Name", ""),
                        input=value if isinstance(value, str) or value is None else json.dumps(value),
                        item_id=item_id, dequeue_count=dequeue_count)


def _untyped(value: Any) -> Any:
    """Drop Newtonsoft `$type` members; events hold no user objects (user data is JSON text)."""
    if isinstance(value, dict):
        return {key: _untyped(item) for key, item in value.items() if key != "$type"}
    if isinstance(value, list):
        return [_untyped(item) for item in value]
    return value
