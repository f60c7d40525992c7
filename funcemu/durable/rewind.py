"""Rewind as the Azure Storage provider does it: failed work in the latest execution becomes GenericEvents.

Replaying the rewritten history re-schedules the failed calls under the same sequence ids.
"""

from __future__ import annotations

from typing import Any

from funcemu.durable.history import EventType

Event = dict[str, Any]


def rewound_history(history: list[Event]) -> tuple[list[Event], list[str]]:
    """The rewritten history, and the ids of failed sub-orchestrations to rewind first."""
    failed_tasks = {e["TaskScheduledId"] for e in history if e["EventType"] == EventType.TaskFailed}
    failed_children = {e["TaskScheduledId"] for e in history
                       if e["EventType"] == EventType.SubOrchestrationInstanceFailed}
    children = [e["InstanceId"] for e in history if e["EventType"] == EventType.SubOrchestrationInstanceCreated
                and e["EventId"] in failed_children]
    out = []
    for event in history:
        if _is_failed_work(event, failed_tasks):
            out.append(_neutralized(event))
        else:
            out.append(event)
    return out, children


def _is_failed_work(event: Event, failed_tasks: set[int]) -> bool:
    kind = event["EventType"]
    if kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
        return True
    if kind == EventType.TaskScheduled and event["EventId"] in failed_tasks:
        return True
    return kind == EventType.ExecutionCompleted and event.get("OrchestrationStatus") == 3


def _neutralized(event: Event) -> Event:
    return {"EventType": int(EventType.GenericEvent), "EventId": -1, "IsPlayed": event.get("IsPlayed", False),
            "Timestamp": event["Timestamp"], "Data": None,
            "Reason": f"Rewound: {EventType(event['EventType']).name}"}
