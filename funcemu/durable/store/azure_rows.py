"""Table rows of an Azure Storage task hub: history events, the sentinel, instance status, the outbox.

Columns follow DurableTask.AzureStorage (docs/azure-storage-taskhub.md §3-§4) so Storage Explorer, DF
Monitor and the real DTFx read them: event fields are columns, `EventType` and `OrchestrationStatus` are
enum names, `Timestamp` is `_Timestamp`, complex members (`OrchestrationInstance`, `Tags`, ...) are JSON
strings, `FireAt`/`ScheduledStartTime` are Edm.DateTime.

funcemu adds a few columns, all named `Funcemu*`, which other readers ignore:
- `FuncemuNulls`: fields whose value was JSON null (the Table service cannot store a null), so an
  event reads back exactly as it was written;
- `FuncemuJson`: fields outside the known complex members that held JSON objects or arrays;
- on the sentinel, `FuncemuEventCount` (events of the current execution at the last complete
  checkpoint) and `FuncemuOutboxId` (the id of the last complete checkpoint: its outbox rows are
  the ones to send, and a writer whose answer was lost finds out from it whether it committed);
- on the instance row, the sentinel's ETag and event count (so a query yields the same etag as a read)
  and `FuncemuParentInstanceId`. Its `Tags` is always "null" (§4.2): funcemu keeps no tags.

An entity's row (`@name@key`, §4.3) is written as the provider's entity scheduler leaves it: `Name` is the
instance id, `ExecutionId` a new GUID, `Input` the scheduler state, `CustomStatus` the entity status; it reads
back as the engine's state (the entity state in `output`). Rows funcemu wrote before (state in `Output`)
read as they are.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from azure.data.tables import EdmType, EntityProperty

from funcemu.durable.entities import parse_entity_id
from funcemu.durable.history import EventType, format_time, parse_time
from funcemu.durable.store.azure_names import SENTINEL_ROW, escape_key
from funcemu.durable.store.base import InstanceState, RuntimeStatus
from funcemu.jsontext import compact

Event = dict[str, Any]
Entity = dict[str, Any]

COMPLEX_COLUMNS = frozenset({"OrchestrationInstance", "ParentInstance", "Tags", "FailureDetails",
                             "ParentTraceContext", "State"})
TIME_COLUMNS = frozenset({"FireAt", "ScheduledStartTime"})
# Columns the provider moves to `{h}-largemessages` when their UTF-16 size passes 60 KiB (§2.4).
LARGE_COLUMNS = ("Name", "Input", "Result", "Output", "Reason", "Details", "Correlation", "FailureDetails",
                 "Tags")
LARGE_COLUMN_BYTES = 60 * 1024
NULLS, JSONS = "FuncemuNulls", "FuncemuJson"
KEY_COLUMNS = frozenset({"PartitionKey", "RowKey", "ExecutionId", "EventType", NULLS, JSONS})
OUTBOX_PREFIX = "outbox-"
# Members of current DTCore events that funcemu's events lack, at the value funcemu always has (null, false):
# written as the provider writes that value (complex null: "null", §2.2), left out again when read back at
# that value so an event reads back as written. A null string (`ClientSpanId`, `Correlation`) has no column.
DEFAULT_MEMBERS: dict[int, dict[str, Any]] = {
    EventType.ExecutionStarted: {"GenerateNewTrace": False},
    EventType.TaskScheduled: {"ParentTraceContext": None, "Tags": None},
    EventType.SubOrchestrationInstanceCreated: {"Tags": None},
    EventType.EventRaised: {"ParentTraceContext": None},
    EventType.ExecutionRewound: {"ParentTraceContext": None},
}
_STATUS_NAMES = [status.value for status in sorted(RuntimeStatus, key=lambda status: status.number)]
_INT32 = range(-(2**31), 2**31)


@dataclass(frozen=True)
class HubEtag:
    """The opaque `InstanceState.etag`: the sentinel row's ETag plus what a checkpoint needs to continue."""

    sentinel: str | None        # None: the instance has no sentinel yet (first checkpoint inserts it)
    event_count: int = 0        # events of the current execution; the next RowKey
    generation: int = 0


def utf16_size(text: str) -> int:
    return len(text.encode("utf-16-le"))


def row_key(index: int) -> str:
    return f"{index:016X}"


# history events


def event_entity(event: Event, partition_key: str, key: str, execution_id: str) -> Entity:
    entity: Entity = {"PartitionKey": partition_key, "RowKey": key, "ExecutionId": execution_id,
                      "EventType": EventType(event["EventType"]).name}
    nulls, jsons = [], []
    for name, value in {**DEFAULT_MEMBERS.get(event["EventType"], {}), **event}.items():
        if name == "EventType":
            continue
        if name == "Timestamp":
            entity["_Timestamp"] = parse_time(value)
        elif name in COMPLEX_COLUMNS:
            entity[name] = compact(value)
        elif value is None:
            nulls.append(name)
        elif isinstance(value, (dict, list)):
            entity[name] = compact(value)
            jsons.append(name)
        else:
            entity[name] = _column(name, value)
    if nulls:
        entity[NULLS] = ",".join(nulls)
    if jsons:
        entity[JSONS] = ",".join(jsons)
    return entity


def entity_event(entity: Entity) -> Event:
    """The event of a history row whose `*BlobName` columns were already replaced by their values."""
    event: Event = {"EventType": int(EventType[entity["EventType"]])}
    jsons = set(_names(entity.get(JSONS)))
    for name, value in entity.items():
        if name in KEY_COLUMNS:
            continue
        if name == "_Timestamp":
            event["Timestamp"] = format_time(value)
        elif name in COMPLEX_COLUMNS or name in jsons:
            event[name] = json.loads(value) if value not in ("", None) else None
        else:
            event[name] = _value(name, value)
    nulls = _names(entity.get(NULLS))
    for name in nulls:
        event[name] = None
    for name, default in DEFAULT_MEMBERS.get(event["EventType"], {}).items():
        if name in event and event[name] == default and name not in nulls:
            del event[name]
    return event


def _column(name: str, value: Any) -> Any:
    if name == "OrchestrationStatus" and isinstance(value, int) and not isinstance(value, bool):
        return _STATUS_NAMES[value]
    if name in TIME_COLUMNS and isinstance(value, str):
        return parse_time(value)
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT32:
        return EntityProperty(value, EdmType.INT64)
    return value


def _value(name: str, value: Any) -> Any:
    if isinstance(value, EntityProperty):
        value = value.value
    if name == "OrchestrationStatus" and isinstance(value, str):
        return _STATUS_NAMES.index(value)
    if name in TIME_COLUMNS and isinstance(value, datetime):
        return format_time(value)
    return value


def _names(listed: Any) -> list[str]:
    return [name for name in str(listed or "").split(",") if name]


# the sentinel


def sentinel_entity(partition_key: str, **columns: Any) -> Entity:
    return {"PartitionKey": partition_key, "RowKey": SENTINEL_ROW, **columns}


def final_sentinel_columns(execution_id: str, event_count: int, outbox_id: str) -> dict[str, Any]:
    return {"ExecutionId": execution_id, "IsCheckpointComplete": True,
            "CheckpointCompletedTimestamp": datetime.now(timezone.utc), "FuncemuEventCount": event_count,
            "FuncemuOutboxId": outbox_id}


def sentinel_count(sentinel: Entity) -> int:
    count = sentinel.get("FuncemuEventCount", 0)
    return int(count.value if isinstance(count, EntityProperty) else count)


# the instance row


def instance_entity(state: InstanceState, hub: str, etag: HubEtag) -> Entity:
    """The full `{Hub}Instances` row (RowKey ""); None values are left out (the row is replaced)."""
    entity: Entity = {
        "PartitionKey": escape_key(state.instance_id), "RowKey": "", "Name": state.name,
        "Version": state.version or "", "ExecutionId": state.execution_id,
        "RuntimeStatus": RuntimeStatus(state.runtime_status).value, "CreatedTime": state.created_time,
        "LastUpdatedTime": state.last_updated_time,
        "CustomStatus": state.custom_status if state.custom_status is not None else "null",
        "TaskHubName": hub, "Generation": etag.generation, "Tags": "null",
        "FuncemuEventCount": etag.event_count}
    if RuntimeStatus(state.runtime_status).is_terminal:
        entity["CompletedTime"] = state.last_updated_time
    optional = {"Input": state.input, "Output": state.output, "FuncemuSentinelETag": etag.sentinel,
                "FuncemuParentInstanceId": state.parent_instance_id}
    if is_entity(state.instance_id):
        optional.update(Input=None, Output=None)
        entity.update(_scheduler_columns(state))
    entity.update({name: value for name, value in optional.items() if value is not None})
    return entity


def entity_instance(entity: Entity, instance_id: str) -> InstanceState:
    """The state of an instance row whose blob-URL columns were already replaced by their values."""
    if is_entity(instance_id) and "Input" in entity:
        entity = _engine_entity_row(entity, instance_id)
    custom = entity.get("CustomStatus")
    return InstanceState(
        instance_id=instance_id, name=entity.get("Name", ""), execution_id=entity.get("ExecutionId", ""),
        runtime_status=RuntimeStatus(entity.get("RuntimeStatus", "Pending")),
        created_time=_plain(entity.get("CreatedTime")), last_updated_time=_plain(entity.get("LastUpdatedTime")),
        input=entity.get("Input"), output=entity.get("Output"),
        custom_status=None if custom in (None, "null") else custom,
        parent_instance_id=entity.get("FuncemuParentInstanceId"), version=entity.get("Version", "") or "",
        etag=HubEtag(entity.get("FuncemuSentinelETag"), sentinel_count(entity), _int(entity.get("Generation"))))


def is_entity(instance_id: str) -> bool:
    return instance_id.startswith("@")


def _scheduler_columns(state: InstanceState) -> Entity:
    """DTCore's `SchedulerState` and `EntityStatus` (defaults omitted; the state is a JSON string of its JSON
    text; no queue, lock or suspension here, an empty sorter). `exists` is the one DF 2.x reads; DTCore
    ignores it."""
    exists = state.output is not None
    scheduler: dict[str, Any] = {"exists": True, "state": state.output} if exists else {}
    scheduler["sorter"] = {}
    return {"Name": state.instance_id, "ExecutionId": uuid.uuid4().hex, "Input": compact(scheduler),
            "CustomStatus": compact({"entityExists": True} if exists else {})}


def _engine_entity_row(row: Entity, instance_id: str) -> Entity:
    """An entity row in the provider's layout as the engine's state has it: the state in `Output`, no input,
    no custom status, the entity's name, no execution id."""
    try:
        scheduler = json.loads(row["Input"])
    except (TypeError, ValueError):
        scheduler = None
    if not isinstance(scheduler, dict):
        return row
    state = scheduler.get("state") if scheduler.get("exists", True) is not False else None
    mapped = {name: value for name, value in row.items() if name not in ("Input", "Output", "CustomStatus")}
    mapped.update(Name=parse_entity_id(instance_id)[0], ExecutionId="")
    if isinstance(state, str):
        mapped["Output"] = state
    return mapped


def _plain(value: Any) -> datetime:
    """A plain aware datetime (the SDK returns a subclass that also carries the service's text)."""
    if not isinstance(value, datetime):
        return datetime(1, 1, 1, tzinfo=timezone.utc)
    utc = value.astimezone(timezone.utc)
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond,
                    tzinfo=timezone.utc)


def _int(value: Any) -> int:
    return int(value.value if isinstance(value, EntityProperty) else value or 0)


# the outbox: outgoing queue messages written with the history, sent after it commits


OUTBOX_CHUNK = 30_000       # characters per column: under the 64 KiB property limit in UTF-16
OUTBOX_CHUNKS = 14          # columns per row: under the 1 MiB entity limit


def outbox_entities(partition_key: str, outbox_id: str, entries: list[list[Any]]) -> list[Entity]:
    """Rows `outbox-{id}-{n}` holding [queue, body, visible time] entries as chunked JSON text."""
    rows: list[Entity] = []
    batch: list[list[Any]] = []
    size = 0
    for entry in entries:
        entry_size = len(compact(entry)) + 1
        if batch and size + entry_size > OUTBOX_CHUNK * OUTBOX_CHUNKS:
            rows.append(_outbox_row(partition_key, outbox_id, len(rows), batch))
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        rows.append(_outbox_row(partition_key, outbox_id, len(rows), batch))
    return rows


def _outbox_row(partition_key: str, outbox_id: str, index: int, entries: list[list[Any]]) -> Entity:
    text = compact(entries)
    chunks = [text[start:start + OUTBOX_CHUNK] for start in range(0, len(text), OUTBOX_CHUNK)]
    row: Entity = {"PartitionKey": partition_key, "RowKey": f"{OUTBOX_PREFIX}{outbox_id}-{index:04d}"}
    row.update({f"M{number:03d}": chunk for number, chunk in enumerate(chunks)})
    return row


def outbox_entries(row: Entity) -> list[list[Any]]:
    chunks = sorted(name for name in row if name.startswith("M") and name[1:].isdigit())
    return list(json.loads("".join(row[name] for name in chunks)))


def outbox_id_of(row: Entity) -> str:
    return str(row["RowKey"])[len(OUTBOX_PREFIX):].rsplit("-", 1)[0]


def estimated_size(entity: Entity) -> int:
    """The provider's estimate of a row's share of a 4 MiB transaction: 1 KiB plus its strings."""
    return 1024 + sum(utf16_size(value) for value in entity.values() if isinstance(value, str))
