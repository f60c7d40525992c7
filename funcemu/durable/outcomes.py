"""What an episode's decisions and completion turn into: history events, messages, activity items.

One small function per decision kind (`_DISPATCH`), and one per way an execution ends.
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from funcemu.durable import history as h
from funcemu.durable.history import EventType
from funcemu.durable.store.base import ActivityItem, Checkpoint, InstanceState, Message, RuntimeStatus

if TYPE_CHECKING:
    from funcemu.durable.engine import Engine
    from funcemu.durable.orchestrator import Decision, Episode

log = logging.getLogger("funcemu.durable")
HTTP_ACTIVITY = "BuiltIn::HttpActivity"


def apply_decisions(engine: Engine, cp: Checkpoint, state: InstanceState, episode: Episode,
                    events: list[dict[str, Any]], now: datetime) -> None:
    """Append each new decision's scheduling event and queue the work it starts."""
    for decision in episode.decisions:
        events.append(decision.event)
        _DISPATCH[decision.kind](engine, cp, state, decision, now)


def _activity(engine: Engine, cp: Checkpoint, state: InstanceState, decision: Decision, now: datetime) -> None:
    task_id = decision.event["EventId"]
    name = decision.name or ""
    if name == HTTP_ACTIVITY:
        payload = json.dumps(decision.request) if decision.request is not None else decision.input
        cp.activities.append(ActivityItem(state.instance_id, state.execution_id, task_id, name, payload))
    elif engine.registry.activity(name) is not None:
        cp.activities.append(ActivityItem(state.instance_id, state.execution_id, task_id, name, decision.input))
    else:
        # Deliberate deviation (durable-protocol.md §3): the real host leaves the instance hanging.
        reason = engine.registry.unknown_activity_message(name)
        log.error("%s: %s", state.instance_id, reason)
        cp.messages.append(Message(state.instance_id, h.task_failed(now, task_id, reason, ""), state.execution_id))


def _timer(engine: Engine, cp: Checkpoint, state: InstanceState, decision: Decision, now: datetime) -> None:
    if decision.canceled or decision.fire_at is None:
        return
    fired = h.timer_fired(decision.fire_at, decision.event["EventId"], decision.fire_at)
    cp.messages.append(Message(state.instance_id, fired, state.execution_id, visible_time=decision.fire_at))


def _sub_orchestration(engine: Engine, cp: Checkpoint, state: InstanceState, decision: Decision,
                       now: datetime) -> None:
    task_id = decision.event["EventId"]
    spec = engine.registry.orchestrator(decision.name or "")
    if spec is None:
        reason = engine.registry.unknown_orchestrator_message(decision.name or "")
        log.error("%s: %s", state.instance_id, reason)
        failed = h.sub_orchestration_failed(now, task_id, reason, "")  # "": no stray None in the SDK's message
        cp.messages.append(Message(state.instance_id, failed, state.execution_id))
        return
    child_id = str(decision.instance_id)
    execution_id = uuid.uuid4().hex
    parent = {"Name": state.name, "Version": "", "TaskScheduleId": task_id,
              "OrchestrationInstance": {"InstanceId": state.instance_id, "ExecutionId": state.execution_id}}
    start = h.execution_started(now, spec.durable_name, child_id, execution_id, decision.input, parent)
    cp.messages.append(Message(child_id, start, execution_id))


def _event_sent(engine: Engine, cp: Checkpoint, state: InstanceState, decision: Decision, now: datetime) -> None:
    from funcemu.durable.entities import request_event

    target = str(decision.instance_id)
    request = dict(decision.request or {})
    request.setdefault("parent", state.instance_id)
    request.setdefault("parentExecution", state.execution_id)
    cp.messages.append(Message(target, request_event(now, request)))


_DISPATCH: dict[str, Callable[..., None]] = {
    "activity": _activity, "timer": _timer, "suborchestration": _sub_orchestration, "event_sent": _event_sent,
}


def complete_execution(cp: Checkpoint, state: InstanceState, parent: dict[str, Any] | None, episode: Episode,
                       events: list[dict[str, Any]], now: datetime) -> bool:
    """Apply the episode's end: completed, failed, continued as new, or still running. `parent` is the
    ExecutionStarted's ParentInstance (None for a top-level orchestration).

    Returns True for continue-as-new (the history then starts over)."""
    cp.state.custom_status = episode.custom_status
    if episode.continue_as_new is not None and not episode.failure:
        _continue_as_new(cp, state, episode.continue_as_new, now, parent)
        return True
    if episode.failure:
        _fail(cp, state, parent, episode, events, now)
    elif episode.done:
        _complete(cp, state, parent, episode, events, now)
    return False


def _complete(cp: Checkpoint, state: InstanceState, parent: dict[str, Any] | None, episode: Episode,
              events: list[dict[str, Any]], now: datetime) -> None:
    events.append(h.execution_completed(now, episode.completion_id, RuntimeStatus.Completed.number, episode.output))
    cp.state.runtime_status, cp.state.output = RuntimeStatus.Completed, episode.output
    log.info("%s: Function '%s (Orchestrator)' completed. ContinuedAsNew: False. IsReplay: False. "
             "Output: (%d bytes). State: Completed.", state.instance_id, state.name, len(episode.output or ""))
    if parent and parent.get("TaskScheduleId") is not None:
        done = h.sub_orchestration_completed(now, parent["TaskScheduleId"], episode.output)
        cp.messages.append(_to_parent(parent, done))


def _fail(cp: Checkpoint, state: InstanceState, parent: dict[str, Any] | None, episode: Episode,
          events: list[dict[str, Any]], now: datetime) -> None:
    failure = episode.failure
    assert failure is not None
    events.append(h.execution_completed(now, episode.completion_id, RuntimeStatus.Failed.number, failure.reason,
                                        {"ErrorType": "OrchestrationFailureException",
                                         "ErrorMessage": failure.reason, "StackTrace": failure.details}))
    cp.state.runtime_status, cp.state.output = RuntimeStatus.Failed, failure.reason
    log.error("%s: Function '%s (Orchestrator)' failed with an error. Reason: %s", state.instance_id,
              state.name, failure.reason)
    if parent and parent.get("TaskScheduleId") is not None:
        failed = h.sub_orchestration_failed(now, parent["TaskScheduleId"], failure.reason, failure.details)
        cp.messages.append(_to_parent(parent, failed))


def _continue_as_new(cp: Checkpoint, state: InstanceState, input_text: str, now: datetime,
                     parent: dict[str, Any] | None) -> None:
    """A new execution of the same instance: new execution id, empty history, unconsumed events dropped."""
    execution_id = uuid.uuid4().hex
    start = h.execution_started(now, state.name, state.instance_id, execution_id, input_text, parent)
    cp.state.runtime_status = RuntimeStatus.ContinuedAsNew
    cp.state.execution_id, cp.state.input, cp.state.output = execution_id, input_text, None
    cp.state.created_time = now  # the new ExecutionStarted's time, as the provider's row shows it
    cp.messages.append(Message(state.instance_id, start, execution_id))
    log.info("%s: Function '%s (Orchestrator)' completed. ContinuedAsNew: True.", state.instance_id, state.name)


def parent_instance(*histories: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ParentInstance of the execution's ExecutionStarted (it opens the history, so this is cheap)."""
    started = next((e for e in itertools.chain(*histories) if e["EventType"] == EventType.ExecutionStarted), None)
    return started.get("ParentInstance") if started else None


def _to_parent(parent: dict[str, Any], event: dict[str, Any]) -> Message:
    instance = parent["OrchestrationInstance"]
    return Message(instance["InstanceId"], event, instance.get("ExecutionId"))
