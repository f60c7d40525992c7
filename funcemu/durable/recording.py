"""A recorded orchestration history, read from a file or a dict, for `funcemu replay`.

Two formats are accepted:
- **funcemu's export** (`funcemu durable get-history ID --output FILE`): the raw history in the SDK's
  JSON shape, with every `EventId`, `TaskScheduledId`, `TimerId` and the OrchestratorStarted/Completed
  events that mark the episodes. Replayed exactly, episode by episode.
- **the management API's JSON** for `GET instances/{id}?showHistory=true&showHistoryOutput=true&showInput=true`
  (from funcemu, `func start` or an app on Azure). The host drops a lot from it (durable-protocol.md
  §6.3), so the history is rebuilt, with these limits:
  * scheduling events of finished work are gone; each comes back from its completion row
    (`FunctionName`, `ScheduledTime`, `Input`), placed by its time;
  * sequence ids are gone; they are given by the order of scheduling, and decisions made at the same
    instant (a fan-out: one episode) may be matched to the code in any order, preferring equal inputs;
  * episode boundaries are gone; each incoming event (completion, timer, external event, control)
    becomes its own episode, in the recorded order;
  * a TimerFired finds its TimerCreated by `FireAt`; a sub-orchestration's instance id is lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from funcemu.durable.history import Event, EventType, format_time, parse_time
from funcemu.durable.status import STATUS_BY_NUMBER
from funcemu.durable.store.base import RuntimeStatus
from funcemu.errors import FuncemuError
from funcemu.jsontext import compact

EXPORT_FORMAT = "funcemu-history"  # the "format" key of funcemu's export document
EXPORT_VERSION = 1
SCHEDULING = (EventType.TaskScheduled, EventType.TimerCreated, EventType.SubOrchestrationInstanceCreated,
              EventType.EventSent)
_COMPLETIONS = {EventType.TaskCompleted: EventType.TaskScheduled, EventType.TaskFailed: EventType.TaskScheduled,
                EventType.SubOrchestrationInstanceCompleted: EventType.SubOrchestrationInstanceCreated,
                EventType.SubOrchestrationInstanceFailed: EventType.SubOrchestrationInstanceCreated}
_WITH_RESULT = (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted)
_HOW_TO_RECORD = ("expected the JSON of GET /runtime/webhooks/durabletask/instances/{id}?showHistory=true"
                  "&showHistoryOutput=true&showInput=true, or a file from `funcemu durable get-history ID "
                  "--output FILE`")
PLACEHOLDER_BASE = -1000  # rebuilt scheduling events get ids below this until the code gives them real ones


class HistoryFileError(FuncemuError):
    """The input is not a history; the message names the source and the first bad field."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")


@dataclass
class Expected:
    """A recorded scheduling decision that the code must make again."""

    event: Event  # SDK shape; EventId is the recorded id (exact) or a placeholder (rebuilt)
    group: int  # decisions of one group may be made in any order (rebuilt: one instant; exact: one id)
    due: int  # index of the batch that may not be delivered before the code made this decision


@dataclass
class Batch:
    """The incoming events of one episode (the first holds ExecutionStarted)."""

    time: datetime
    events: list[Event]


@dataclass
class Recording:
    source: str
    name: str
    instance_id: str
    exact: bool
    batches: list[Batch]
    expected: list[Expected]
    completion: Event | None = None  # ExecutionCompleted, when the history ended
    status: str | None = None  # the recorded runtimeStatus, when known
    events: int = 0  # how many events were read

    @property
    def status_name(self) -> str:
        if self.completion is not None:
            return _status_name(self.completion.get("OrchestrationStatus"))
        return self.status or "Running"


def load_recording(history: str | Path | dict[str, Any]) -> Recording:
    """Read a history file (or an already parsed document) in either accepted format."""
    if isinstance(history, dict):
        return parse_document(history, "<history>")
    path = Path(history)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise HistoryFileError(str(path), f"cannot be read: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise HistoryFileError(str(path), f"is not JSON ({exc}); {_HOW_TO_RECORD}") from None
    return parse_document(document, str(path))


def parse_document(document: Any, source: str) -> Recording:
    if not isinstance(document, dict):
        raise HistoryFileError(source, f"the top level is {_a(document)}, not an object; {_HOW_TO_RECORD}")
    if document.get("format") == EXPORT_FORMAT:
        return _parse_export(document, source)
    if "historyEvents" not in document:
        raise HistoryFileError(source, f"has no \"historyEvents\": this is not a history; {_HOW_TO_RECORD}")
    return _Rebuilder(document, source).recording()


# ---------------------------------------------------------------------------------------------- export


def _parse_export(document: dict[str, Any], source: str) -> Recording:
    if document.get("version") != EXPORT_VERSION:
        raise HistoryFileError(source, f"version {document.get('version')!r} of the funcemu export is not "
                                       f"supported (this funcemu reads version {EXPORT_VERSION})")
    events = _event_list(document.get("history"), source, "history")
    for index, event in enumerate(events):
        _check_raw_event(event, source, f"history[{index}]")
    starts = [i for i, event in enumerate(events) if event["EventType"] == EventType.OrchestratorStarted]
    if not starts or starts[0] != 0 or len(events) < 2 or events[1]["EventType"] != EventType.ExecutionStarted:
        raise HistoryFileError(source, "history[0] and history[1] must be OrchestratorStarted and ExecutionStarted")
    instance: dict[str, Any] = document["instance"] if isinstance(document.get("instance"), dict) else {}
    started = events[1]
    recording = Recording(source=source, name=str(started.get("Name") or instance.get("name") or ""),
                          instance_id=str(instance.get("instanceId") or _instance_of(started)), exact=True,
                          batches=[], expected=[], status=instance.get("runtimeStatus"), events=len(events))
    for number, (begin, end) in enumerate(zip(starts, starts[1:] + [len(events)], strict=True)):
        _add_recorded_episode(recording, number, events[begin:end])
    return recording


def _add_recorded_episode(recording: Recording, number: int, episode: list[Event]) -> None:
    incoming: list[Event] = []
    for event in episode[1:]:
        kind = event["EventType"]
        if kind in SCHEDULING:
            recording.expected.append(Expected(event, group=event["EventId"], due=number + 1))
        elif kind == EventType.ExecutionCompleted:
            recording.completion = event
        elif kind != EventType.OrchestratorCompleted:
            incoming.append(event)
    recording.batches.append(Batch(parse_time(episode[0]["Timestamp"]), incoming))


def _check_raw_event(event: Any, source: str, where: str) -> None:
    if not isinstance(event, dict):
        raise HistoryFileError(source, f"{where} is {_a(event)}, not an event object")
    kind = event.get("EventType")
    if isinstance(kind, bool) or not isinstance(kind, int) or kind not in EventType._value2member_map_:
        raise HistoryFileError(source, f"{where}.EventType {json.dumps(kind)} is not a history event type number")
    if isinstance(event.get("EventId"), bool) or not isinstance(event.get("EventId"), int):
        raise HistoryFileError(source, f"{where}.EventId {json.dumps(event.get('EventId'))} is not an integer")
    _check_time(event, "Timestamp", source, where)


# ---------------------------------------------------------------------------------------------- rebuilt


class _Rebuilder:
    """Management-API rows back to SDK-shaped events, with placeholder ids for the scheduling events."""

    def __init__(self, document: dict[str, Any], source: str) -> None:
        self.document, self.source = document, source
        self.rows = _event_list(document.get("historyEvents"), source, "historyEvents")
        self.placeholders = PLACEHOLDER_BASE
        self.scheduled: list[tuple[datetime, int, Event]] = []  # (time, row, event)
        self.open_timers: list[Event] = []
        self.incoming: list[Event] = []
        self.completion: Event | None = None
        self.due: dict[int, int] = {}  # placeholder -> batch that delivers its completion

    def recording(self) -> Recording:
        started = self._started()
        for index, row in enumerate(self.rows[1:], start=1):
            self._row(index, row)
        batches = [Batch(parse_time(started["Timestamp"]), [started])]
        for event in self.incoming:
            when = max(parse_time(event["Timestamp"]), batches[-1].time)
            batches.append(Batch(when, [event]))
            link = event.get("TaskScheduledId", event.get("TimerId"))
            if isinstance(link, int) and link <= PLACEHOLDER_BASE:
                self.due[link] = len(batches) - 1
        return Recording(source=self.source, name=str(started["Name"]), instance_id=_instance_of(started),
                         exact=False, batches=batches, expected=self._expected(len(batches)),
                         completion=self.completion, status=self.document.get("runtimeStatus"),
                         events=len(self.rows))

    def _expected(self, end: int) -> list[Expected]:
        ordered = sorted(self.scheduled, key=lambda item: (item[0], item[1]))
        groups = {when: number for number, when in enumerate(sorted({when for when, _, _ in ordered}))}
        return [Expected(event, group=groups[when], due=self.due.get(event["EventId"], end))
                for when, _, event in ordered]

    def _started(self) -> Event:
        row = self._checked(0, self.rows[0])
        if row["EventType"] != EventType.ExecutionStarted:
            raise HistoryFileError(self.source, f"historyEvents[0].EventType is \"{row['EventType'].name}\"; a "
                                                f"history starts with ExecutionStarted")
        name = row.get("FunctionName") or row.get("Name") or self.document.get("name")
        if not isinstance(name, str) or not name:
            raise HistoryFileError(self.source, "historyEvents[0].FunctionName is missing: which orchestrator ran?")
        if "Input" not in row and "input" not in self.document:
            raise HistoryFileError(self.source, "historyEvents[0].Input is missing: record the history with "
                                                "showInput=true")
        stored = row["Input"] if "Input" in row else _stored(self.document.get("input"))
        instance = {"InstanceId": str(self.document.get("instanceId") or ""), "ExecutionId": "replay"}
        return _sdk_event(EventType.ExecutionStarted, row, Name=name, Version="", Input=stored,
                          OrchestrationInstance=instance, ParentInstance=None)

    def _checked(self, index: int, row: Any) -> dict[str, Any]:
        where = f"historyEvents[{index}]"
        if not isinstance(row, dict):
            raise HistoryFileError(self.source, f"{where} is {_a(row)}, not an event object")
        if "EventType" not in row:
            raise HistoryFileError(self.source, f"{where} has no EventType")
        kind = _event_type(row["EventType"])
        if kind is None:
            raise HistoryFileError(self.source, f"{where}.EventType {json.dumps(row['EventType'])} is not a "
                                                f"history event type")
        _check_time(row, "Timestamp", self.source, where)
        return {**row, "EventType": kind}

    def _row(self, index: int, raw: Any) -> None:
        row = self._checked(index, raw)
        kind, where = row["EventType"], f"historyEvents[{index}]"
        if kind in _COMPLETIONS:
            self._completion(index, row, where)
        elif kind in SCHEDULING:
            self._schedule(index, row, where)
        elif kind == EventType.TimerFired:
            self._timer_fired(row, where)
        elif kind == EventType.ExecutionCompleted:
            status = _status_number(row.get("OrchestrationStatus"))
            self.completion = _sdk_event(kind, row, OrchestrationStatus=status, Result=_result_text(row),
                                         FailureDetails=row.get("FailureDetails"))
        elif kind not in (EventType.OrchestratorStarted, EventType.OrchestratorCompleted, EventType.ExecutionStarted):
            self.incoming.append(_sdk_event(kind, row, **_fields(row)))

    def _placeholder(self) -> int:
        self.placeholders -= 1
        return self.placeholders

    def _schedule(self, index: int, row: dict[str, Any], where: str) -> Event:
        kind = row["EventType"]
        if kind == EventType.TimerCreated:
            _check_time(row, "FireAt", self.source, where)
        event = _sdk_event(kind, row, self._placeholder(), **_fields(row))
        if kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated):
            event.setdefault("Version", "")
        self.scheduled.append((parse_time(event["Timestamp"]), index, event))
        if kind == EventType.TimerCreated:
            self.open_timers.append(event)
        return event

    def _completion(self, index: int, row: dict[str, Any], where: str) -> None:
        kind = row["EventType"]
        for key in ("FunctionName", "ScheduledTime"):
            if key not in row:
                raise HistoryFileError(self.source, f"{where}.{key} is missing ({kind.name} rows of the management "
                                                    f"API carry it)")
        _check_time(row, "ScheduledTime", self.source, where)
        if kind in _WITH_RESULT and "Result" not in row:
            raise HistoryFileError(self.source, f"{where}.Result is missing: record the history with "
                                                f"showHistoryOutput=true")
        scheduled = {"EventType": _COMPLETIONS[kind], "Timestamp": row["ScheduledTime"],
                     "Name": row["FunctionName"], "Input": row.get("Input"), "InstanceId": row.get("InstanceId", "")}
        if _COMPLETIONS[kind] == EventType.TaskScheduled:
            del scheduled["InstanceId"]
        link = self._schedule(index, scheduled, where)["EventId"]
        extra = {"Result": _result_text(row)} if kind in _WITH_RESULT else {
            "Reason": row.get("Reason"), "Details": row.get("Details"), "FailureDetails": row.get("FailureDetails")}
        self.incoming.append(_sdk_event(kind, row, TaskScheduledId=link, **extra))

    def _timer_fired(self, row: dict[str, Any], where: str) -> None:
        _check_time(row, "FireAt", self.source, where)
        fire_at = parse_time(row["FireAt"])
        timer = next((t for t in self.open_timers if parse_time(t["FireAt"]) == fire_at), None)
        if timer is None:
            raise HistoryFileError(self.source, f"{where} is a TimerFired for {row['FireAt']} without a TimerCreated "
                                                f"for that time before it")
        self.open_timers.remove(timer)
        self.incoming.append(_sdk_event(EventType.TimerFired, row, TimerId=timer["EventId"], FireAt=row["FireAt"]))


# ---------------------------------------------------------------------------------------------- helpers


def _sdk_event(kind: EventType, row: dict[str, Any], event_id: int = -1, **fields: Any) -> Event:
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False,
            "Timestamp": format_time(parse_time(row["Timestamp"])), **fields}


_DROPPED = {"EventType", "EventId", "IsPlayed", "Timestamp", "ScheduledTime", "FunctionName"}


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in _DROPPED}


def _event_type(value: Any) -> EventType | None:
    if isinstance(value, str) and value in EventType.__members__:
        return EventType[value]
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in EventType._value2member_map_:
        return EventType(value)
    return None


def _event_list(value: Any, source: str, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise HistoryFileError(source, f"{key} is {_a(value)}, not a list of events")
    if not value:
        raise HistoryFileError(source, f"{key} is empty: the instance has no history yet (still Pending?)")
    return value


def _check_time(row: dict[str, Any], key: str, source: str, where: str) -> None:
    value = row.get(key)
    try:
        if isinstance(value, str):
            parse_time(value)
            return
    except ValueError:
        pass
    raise HistoryFileError(source, f"{where}.{key} {json.dumps(value)} is not an ISO 8601 time")


def _result_text(row: dict[str, Any]) -> str | None:
    """The management API parses stored results (`ParseToJToken`); the SDK wants the JSON text back."""
    return _stored(row.get("Result"))


def _stored(value: Any) -> str | None:
    return None if value is None else compact(value)


def _status_number(value: Any) -> Any:
    if isinstance(value, str) and value in RuntimeStatus.__members__:
        return RuntimeStatus(value).number
    return value


def _status_name(value: Any) -> str:
    status = STATUS_BY_NUMBER.get(value) if isinstance(value, int) else None
    return status.value if status is not None else str(value)


def _instance_of(started: Event) -> str:
    return str((started.get("OrchestrationInstance") or {}).get("InstanceId") or "")


def _a(value: Any) -> str:
    names: dict[type, str] = {list: "a list", dict: "an object", str: "a string", bool: "a boolean",
                              int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
