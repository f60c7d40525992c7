"""A readable timeline of an instance's history: each event with its time since the start and durations.

Input: the management API's status payload with `historyEvents` (any host). Example line:

    +3d 00:00:00.001  TaskCompleted        escalate_approval  took 0.002s  -> {"status": "escalated"}
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from funcemu.durable.history import parse_time

VALUE_WIDTH = 70


def render_timeline(status: dict[str, Any]) -> str:
    events = status.get("historyEvents") or []
    lines = [f"Instance {status.get('instanceId')} of '{status.get('name')}': {status.get('runtimeStatus')}"]
    created, updated = _time(status.get("createdTime")), _time(status.get("lastUpdatedTime"))
    if created and updated:
        lines.append(f"created {status.get('createdTime')}, last updated {status.get('lastUpdatedTime')} "
                     f"({span((updated - created).total_seconds())} later)")
    if status.get("customStatus") is not None:
        lines.append(f"custom status: {_value(status.get('customStatus'))}")
    if not events:
        lines.append("(no history: the instance has not run yet)")
        return "\n".join(lines)
    start = _time(events[0].get("Timestamp")) or datetime.min
    lines.append("")
    for event in events:
        when = _time(event.get("Timestamp"))
        offset = f"+{span((when - start).total_seconds())}" if when else "?"
        kind = str(event.get("EventType"))
        lines.append(f"  {offset:>16}  {kind:<34} {_details(kind, event)}".rstrip())
    return "\n".join(lines)


def span(seconds: float) -> str:
    """0.004s, 00:01:30.000, 3d 00:00:00.000."""
    if seconds < 0:
        return "-" + span(-seconds)
    if seconds < 60:
        return f"{seconds:.3f}s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:06.3f}"


def _details(kind: str, event: dict[str, Any]) -> str:
    describe = _DETAILS.get(kind)
    return describe(event) if describe else ""


def _completion(event: dict[str, Any]) -> str:
    text = str(event.get("FunctionName") or event.get("Name") or "")
    took = _between(event.get("ScheduledTime"), event.get("Timestamp"))
    if took:
        text += f"  took {took}"
    if "Result" in event:
        text += f"  -> {_value(event['Result'])}"
    if event.get("Reason"):
        text += f"  failed: {_short(str(event['Reason']))}"
    return text


def _timer_created(event: dict[str, Any]) -> str:
    wait = _between(event.get("Timestamp"), event.get("FireAt"))
    return f"fires at {event.get('FireAt')}" + (f" (in {wait})" if wait else "")


def _timer_fired(event: dict[str, Any]) -> str:
    late = _between(event.get("FireAt"), event.get("Timestamp"))
    return f"due at {event.get('FireAt')}" + (f", fired {late} later" if late and late != "0.000s" else "")


def _named_with_input(event: dict[str, Any]) -> str:
    name = event.get("FunctionName") or event.get("Name") or ""
    return f"{name}  input {_value(_parsed(event.get('Input')))}" if event.get("Input") is not None else str(name)


def _execution_completed(event: dict[str, Any]) -> str:
    text = str(event.get("OrchestrationStatus") or "")
    return text + (f"  -> {_value(event['Result'])}" if "Result" in event else "")


def _reason(field: str) -> Any:
    return lambda event: _short(str(event.get(field))) if event.get(field) is not None else ""


_DETAILS = {
    "ExecutionStarted": _named_with_input,
    "TaskCompleted": _completion, "TaskFailed": _completion,
    "SubOrchestrationInstanceCompleted": _completion, "SubOrchestrationInstanceFailed": _completion,
    "TaskScheduled": lambda e: f"{e.get('Name')}  (still running)",
    "SubOrchestrationInstanceCreated": lambda e: f"{e.get('Name')} as {e.get('InstanceId')}  (still running)",
    "TimerCreated": _timer_created, "TimerFired": _timer_fired,
    "EventRaised": _named_with_input,
    "EventSent": lambda e: f"{e.get('Name')} to {e.get('InstanceId')}",
    "ExecutionCompleted": _execution_completed,
    "ExecutionTerminated": _reason("Input"), "ExecutionSuspended": _reason("Reason"),
    "ExecutionResumed": _reason("Reason"),
}


def _between(first: Any, second: Any) -> str | None:
    a, b = _time(first), _time(second)
    return span((b - a).total_seconds()) if a and b else None


def _time(text: Any) -> datetime | None:
    try:
        return parse_time(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _parsed(value: Any) -> Any:
    """Stored inputs are JSON text, sometimes twice (a Python client start); show the value."""
    for _ in range(2):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


def _value(value: Any) -> str:
    return _short(json.dumps(value, ensure_ascii=False))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= VALUE_WIDTH else text[:VALUE_WIDTH - 3] + "..."
