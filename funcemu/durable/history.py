"""History events in exactly the JSON shape the Durable Python SDK reads (DTFx HistoryEvent, Newtonsoft).

Every event carries `EventType` (int), `EventId` (sequence id or -1), `IsPlayed` and a UTC `Timestamp`
ending in `Z`. The engine and the tests build events only through these constructors.
"""

from __future__ import annotations

import enum
import functools
from datetime import datetime, timezone
from typing import Any

Event = dict[str, Any]


class EventType(enum.IntEnum):
    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20
    ExecutionRewound = 21


def format_time(value: datetime) -> str:
    """Newtonsoft round-trip format: up to 7 fractional digits, trailing zeros trimmed, `Z`."""
    global _last_formatted
    last = _last_formatted
    if last[0] is value:  # an episode formats its `now` several times
        return last[1]
    utc = value
    if utc.tzinfo is not timezone.utc:
        if utc.tzinfo is None:
            utc = utc.replace(tzinfo=timezone.utc)
        utc = utc.astimezone(timezone.utc)
    # isoformat pads years below 1000 where strftime does not: keep strftime's text for those.
    text = utc.isoformat()[:19] if utc.year >= 1000 else utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    text += "Z"
    _last_formatted = (value, text)
    return text


_last_formatted: tuple[datetime | None, str] = (None, "")


@functools.lru_cache(maxsize=8192)
def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time (`Z` or offset, up to 7 fractional digits) to an aware UTC datetime."""
    value = text.strip()
    if value.endswith("Z") or value.endswith("z"):
        value = value[:-1] + "+00:00"
    if "." in value:
        head, _, rest = value.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        value = f"{head}.{(digits + '000000')[:6]}{rest}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _event(kind: EventType, timestamp: datetime, event_id: int = -1, **fields: Any) -> Event:
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False,
            "Timestamp": format_time(timestamp), **fields}


def orchestrator_started(timestamp: datetime) -> Event:
    return _event(EventType.OrchestratorStarted, timestamp)


def orchestrator_completed(timestamp: datetime) -> Event:
    return _event(EventType.OrchestratorCompleted, timestamp)


def execution_started(timestamp: datetime, name: str, instance_id: str, execution_id: str,
                      input: str | None, parent: dict[str, Any] | None = None,
                      version: str = "", scheduled_start: datetime | None = None) -> Event:
    """`input` is the stored JSON text (for a Python client start: a JSON string holding JSON text)."""
    return _event(EventType.ExecutionStarted, timestamp, Name=name, Version=version, Input=input,
                  OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
                  ParentInstance=parent, Tags=None, Correlation=None, ParentTraceContext=None,
                  ScheduledStartTime=format_time(scheduled_start) if scheduled_start else None,
                  Generation=0)


def execution_completed(timestamp: datetime, event_id: int, status: int, result: str | None,
                        failure_details: Any = None) -> Event:
    return _event(EventType.ExecutionCompleted, timestamp, event_id, OrchestrationStatus=status,
                  Result=result, FailureDetails=failure_details)


def execution_terminated(timestamp: datetime, reason: str | None) -> Event:
    return _event(EventType.ExecutionTerminated, timestamp, Input=reason)


def execution_suspended(timestamp: datetime, reason: str | None) -> Event:
    return _event(EventType.ExecutionSuspended, timestamp, Reason=reason)


def execution_resumed(timestamp: datetime, reason: str | None) -> Event:
    return _event(EventType.ExecutionResumed, timestamp, Reason=reason)


def execution_rewound(timestamp: datetime, reason: str | None) -> Event:
    return _event(EventType.ExecutionRewound, timestamp, Reason=reason)


def task_scheduled(timestamp: datetime, event_id: int, name: str, input: str | None) -> Event:
    """DTFx stores activity parameters as a JSON array holding the action's input text."""
    import json
    stored = json.dumps([input]) if input is not None else None
    return _event(EventType.TaskScheduled, timestamp, event_id, Name=name, Version="", Input=stored)


def task_completed(timestamp: datetime, task_id: int, result: str | None) -> Event:
    return _event(EventType.TaskCompleted, timestamp, TaskScheduledId=task_id, Result=result)


def task_failed(timestamp: datetime, task_id: int, reason: str, details: str | None) -> Event:
    return _event(EventType.TaskFailed, timestamp, TaskScheduledId=task_id, Reason=reason,
                  Details=details, FailureDetails=None)


def sub_orchestration_created(timestamp: datetime, event_id: int, name: str, instance_id: str,
                              input: str | None) -> Event:
    return _event(EventType.SubOrchestrationInstanceCreated, timestamp, event_id, Name=name,
                  Version="", InstanceId=instance_id, Input=input)


def sub_orchestration_completed(timestamp: datetime, task_id: int, result: str | None) -> Event:
    return _event(EventType.SubOrchestrationInstanceCompleted, timestamp, TaskScheduledId=task_id,
                  Result=result)


def sub_orchestration_failed(timestamp: datetime, task_id: int, reason: str, details: str | None) -> Event:
    return _event(EventType.SubOrchestrationInstanceFailed, timestamp, TaskScheduledId=task_id,
                  Reason=reason, Details=details, FailureDetails=None)


def timer_created(timestamp: datetime, event_id: int, fire_at: datetime) -> Event:
    return _event(EventType.TimerCreated, timestamp, event_id, FireAt=format_time(fire_at))


def timer_fired(timestamp: datetime, timer_id: int, fire_at: datetime) -> Event:
    return _event(EventType.TimerFired, timestamp, TimerId=timer_id, FireAt=format_time(fire_at))


def event_sent(timestamp: datetime, event_id: int, instance_id: str, name: str, input: str | None) -> Event:
    return _event(EventType.EventSent, timestamp, event_id, InstanceId=instance_id, Name=name, Input=input)


def event_raised(timestamp: datetime, name: str, input: str | None) -> Event:
    return _event(EventType.EventRaised, timestamp, Name=name, Input=input)


def generic_event(timestamp: datetime, data: str | None) -> Event:
    return _event(EventType.GenericEvent, timestamp, Data=data)


def episode(timestamp: datetime, *events: Event) -> list[Event]:
    """Wrap events in OrchestratorStarted/OrchestratorCompleted, as one episode of a real history."""
    return [orchestrator_started(timestamp), *events, orchestrator_completed(timestamp)]


def played(events: list[Event]) -> list[Event]:
    """Copies of `events` marked as processed in an earlier episode (OrchestratorStarted stays false)."""
    out = []
    for event in events:
        copy = dict(event)
        if copy["EventType"] != EventType.OrchestratorStarted:
            copy["IsPlayed"] = True
        out.append(copy)
    return out
