"""One orchestration work item: take every visible message of an instance, run one replay episode
through the SDK, and checkpoint history, status and outgoing work atomically.

Suspended instances do not run user code: messages that arrive meanwhile are stored in the history
(as the real host stores them) and take effect in the episode after ExecutionResumed.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from funcemu.durable import history as h
from funcemu.durable.history import EventType
from funcemu.durable.orchestrator import (
    Episode,
    Failure,
    PlayedText,
    finish_episode,
    prepare_episode,
    run_episode,
)
from funcemu.durable.outcomes import apply_decisions, complete_execution, parent_instance
from funcemu.durable.store.base import Checkpoint, InstanceState, Message, RuntimeStatus, StaleCheckpointError
from funcemu.durable.worker import OrchestratorProcessError
from funcemu.invoke import function_logger, new_invocation_id

if TYPE_CHECKING:
    from funcemu.durable.engine import Engine

log = logging.getLogger("funcemu.durable")
STALE_RETRIES = 5
CONTROL_EVENTS = {EventType.ExecutionSuspended, EventType.ExecutionResumed, EventType.ExecutionTerminated}


# Bounds of the history cache (least recently used first out): ~10 MB for 1,024 short histories, a
# fan-out of 10,000 (20,000 events) still fits; beyond, instances are read from the store as before.
CACHED_INSTANCES = 1024
CACHED_EVENTS = 25_000


@dataclass
class _Known:
    """An instance's history as its last checkpoint in this process left it, and the played JSON of it."""

    etag: Any
    execution_id: str
    history: list[dict[str, Any]]  # never mutated: each checkpoint makes a new list
    text: PlayedText


class _Histories:
    """The history each instance's last checkpoint left, for stores that declare it may be reused
    (`reusable_history`): when the instance's etag is still the one that checkpoint returned, nothing
    else wrote the instance, so its history is the cached one (no read, no parsing), and the played
    JSON of it (the bulk of the handler's document) is extended rather than re-encoded.
    Least recently used entries go first once either bound is reached."""

    def __init__(self, max_instances: int = CACHED_INSTANCES, max_events: int = CACHED_EVENTS) -> None:
        self.max_instances, self.max_events = max_instances, max_events
        self._entries: OrderedDict[str, _Known] = OrderedDict()
        self._events = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, state: InstanceState) -> _Known | None:
        known = self._entries.get(state.instance_id)
        if known is None or known.etag != state.etag or known.execution_id != state.execution_id:
            return None
        self._entries.move_to_end(state.instance_id)
        return known

    def text_for(self, instance_id: str, history: list[dict[str, Any]]) -> PlayedText:
        """The played text kept with `history` (the very list), else a new one."""
        known = self._entries.get(instance_id)
        return known.text if known is not None and known.history is history else PlayedText()

    def put(self, instance_id: str, known: _Known) -> None:
        self.drop(instance_id)
        if known.etag is None or len(known.history) > self.max_events:
            return
        self._entries[instance_id] = known
        self._events += len(known.history)
        while len(self._entries) > self.max_instances or self._events > self.max_events:
            _, oldest = self._entries.popitem(last=False)
            self._events -= len(oldest.history)

    def drop(self, instance_id: str) -> None:
        known = self._entries.pop(instance_id, None)
        if known is not None:
            self._events -= len(known.history)


class Episodes:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.histories = _Histories()

    @property
    def _reusable(self) -> bool:
        return bool(getattr(self.engine.store, "reusable_history", False))

    async def run(self, instance_id: str) -> None:
        for _ in range(STALE_RETRIES):
            try:
                await self._run_once(instance_id)
                return
            except StaleCheckpointError:
                log.info("instance '%s': checkpoint lost a race; replaying the episode", instance_id)
        log.error("instance '%s': checkpoint kept losing races; will retry later", instance_id)

    async def _run_once(self, instance_id: str) -> None:
        store, now = self.engine.store, self.engine.now()
        messages = await store.pending_messages(instance_id, now)
        if not messages:
            return
        if instance_id.startswith("@"):
            from funcemu.durable.entities import run_entity_batch
            await run_entity_batch(self.engine, instance_id, messages, now)
            return
        state = await store.get_instance(instance_id)
        state, past = await self._current_execution(instance_id, state, messages)
        if state is None:
            await store.purge_instances([instance_id])  # messages for an instance that no longer exists
            return
        await self._apply(state, past, messages, now)

    async def _current_execution(self, instance_id: str, state: InstanceState | None,
                                 messages: list[Message]) -> tuple[InstanceState | None, list[dict[str, Any]]]:
        """The state to run; a start message for a new execution (sub-orchestration, continue-as-new,
        replacement) begins a fresh history."""
        start = next((m for m in messages if m.event["EventType"] == EventType.ExecutionStarted), None)
        if start is not None and (state is None or state.execution_id != start.execution_id
                                  or state.runtime_status == RuntimeStatus.Pending):
            return _state_from_start(instance_id, start, state, self.engine.now()), []
        if state is None:
            return None, []
        known = self.histories.get(state) if self._reusable else None
        if known is not None:
            return state, known.history
        return state, await self.engine.store.get_history(instance_id)

    async def _apply(self, state: InstanceState, past: list[dict[str, Any]], messages: list[Message],
                     now: datetime) -> None:
        fresh = _without_redeliveries(past, [m for m in messages if m.execution_id in (None, state.execution_id)])
        new_events = [h.orchestrator_started(now)] + [_delivered(m.event, now) for m in fresh]
        cp = Checkpoint(instance_id=state.instance_id, etag=state.etag, state=_copy(state, now), consumed=messages)
        text = self.histories.text_for(state.instance_id, past)
        if state.runtime_status.is_terminal:
            cp.new_events = []  # late messages for a finished instance are dropped
        elif any(e["EventType"] == EventType.ExecutionTerminated for e in new_events):
            self._terminate(cp, past, new_events, now)
        else:
            status, control = _status_after_controls(state.runtime_status, new_events)
            cp.state.runtime_status = status
            if control is not None:  # Azure Storage shows the suspend/resume reason until a completion
                cp.state.output = control.get("Reason")
            if status == RuntimeStatus.Suspended:
                cp.new_events = new_events + [h.orchestrator_completed(now)]
            else:
                await self._run_code(cp, state, past, new_events, now, text)
        cp.replace_history = cp.replace_history or not past
        try:
            await self._commit(cp)
        except BaseException:
            self.histories.drop(state.instance_id)
            raise
        self._remember(cp, past, text)

    def _remember(self, cp: Checkpoint, past: list[dict[str, Any]], text: PlayedText) -> None:
        """Keep the history this checkpoint left (see _Histories), while the execution goes on."""
        status = cp.state.runtime_status
        if not self._reusable or status.is_terminal or status == RuntimeStatus.ContinuedAsNew:
            self.histories.drop(cp.instance_id)
            return
        history = list(cp.new_events) if cp.replace_history else past + cp.new_events
        played = PlayedText() if cp.replace_history else text
        self.histories.put(cp.instance_id, _Known(cp.state.etag, cp.state.execution_id, history, played))

    def _terminate(self, cp: Checkpoint, past: list[dict[str, Any]], new_events: list[dict[str, Any]],
                   now: datetime) -> None:
        cut = next(i for i, e in enumerate(new_events) if e["EventType"] == EventType.ExecutionTerminated)
        reason = new_events[cut].get("Input")
        cp.new_events = new_events[:cut + 1] + [
            h.execution_completed(now, -1, RuntimeStatus.Terminated.number, reason),
            h.orchestrator_completed(now)]
        cp.state.runtime_status, cp.state.output = RuntimeStatus.Terminated, reason
        cp.canceled_timers = outstanding_timers(past, new_events)
        log.info("%s: Function '%s (Orchestrator)' was terminated. Reason: %s", cp.instance_id,
                 cp.state.name, reason)

    async def _run_code(self, cp: Checkpoint, state: InstanceState, past: list[dict[str, Any]],
                  new_events: list[dict[str, Any]], now: datetime, text: PlayedText | None = None) -> None:
        parent = parent_instance(past, new_events)
        episode = await self._episode(state, past, new_events, parent, now, text)
        events = list(new_events)
        apply_decisions(self.engine, cp, state, episode, events, now)
        continued = complete_execution(cp, state, parent, episode, events, now)
        cp.canceled_timers = list(episode.canceled_timer_ids)
        if continued or cp.state.runtime_status.is_terminal:
            cp.canceled_timers = outstanding_timers(past, events)
        if continued:  # the next execution starts from an empty history with its own ExecutionStarted
            cp.new_events, cp.replace_history = [], True
            return
        cp.new_events = events + [h.orchestrator_completed(now)]
        if cp.state.runtime_status in (RuntimeStatus.Pending, RuntimeStatus.ContinuedAsNew) and not episode.done:
            cp.state.runtime_status = RuntimeStatus.Running

    async def _episode(self, state: InstanceState, past: list[dict[str, Any]], new_events: list[dict[str, Any]],
                 parent: dict[str, Any] | None, now: datetime, text: PlayedText | None = None) -> Episode:
        spec = self.engine.registry.orchestrator(state.name)
        logger = function_logger(state.name)
        invocation = new_invocation_id()
        logger.info("Executing 'Functions.%s' (Reason='(null)', Id=%s)", state.name, invocation)
        started = time.perf_counter()
        if spec is None:
            episode = _failed_episode(state.name, self.engine.registry.unknown_orchestrator_message(state.name))
        else:
            parent_id = parent["OrchestrationInstance"]["InstanceId"] if parent else None
            worker = self.engine.orchestrator_process
            if worker is None:
                episode = run_episode(spec.callable, name=state.name, instance_id=state.instance_id, past=past,
                                      new=new_events, now=now, played_text=text, parent_instance_id=parent_id)
            else:
                call = prepare_episode(name=state.name, instance_id=state.instance_id, past=past, new=new_events,
                                       now=now, played_text=text, parent_instance_id=parent_id)
                try:
                    reply = await worker.call(spec.name, state.name, call.document, call.replaying)
                except OrchestratorProcessError:
                    millis = int((time.perf_counter() - started) * 1000)
                    logger.info("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", state.name, invocation,
                                millis)
                    raise
                episode = finish_episode(call, reply)
        millis = int((time.perf_counter() - started) * 1000)
        outcome = "Failed" if episode.failure else "Succeeded"
        logger.info("Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)", state.name, outcome, invocation, millis)
        return episode

    async def _commit(self, cp: Checkpoint) -> None:
        await self.engine.store.checkpoint(cp)
        self.engine.notify_changed(cp.instance_id)
        if cp.activities:
            self.engine.pacer.scheduled(cp.instance_id, len(cp.activities))
            self.engine.wake_activities()
        if cp.messages:
            self.engine.wake()

    async def rewind(self, state: InstanceState, reason: str | None) -> None:
        """Neutralize the failure in the history, reset to Pending and replay (Azure Storage's rewind)."""
        from funcemu.durable.rewind import rewound_history

        self.histories.drop(state.instance_id)
        history = await self.engine.store.get_history(state.instance_id)
        now = self.engine.now()
        events, children = rewound_history(history)
        for child_id in children:
            child = await self.engine.store.get_instance(child_id)
            if child is not None and child.runtime_status == RuntimeStatus.Failed:
                await self.rewind(child, reason)
        new_state = _copy(state, now)
        new_state.runtime_status = RuntimeStatus.Pending  # a Merge of status and time: the output stays
        cp = Checkpoint(instance_id=state.instance_id, etag=state.etag, state=new_state, new_events=events,
                        replace_history=True,
                        messages=[Message(state.instance_id, h.generic_event(now, reason))])  # no execution (§5.1)
        await self._commit(cp)


def _state_from_start(instance_id: str, start: Message, old: InstanceState | None, now: datetime) -> InstanceState:
    event = start.event
    parent = event.get("ParentInstance") or {}
    created = h.parse_time(event["Timestamp"]) if event.get("Timestamp") else now  # CreatedTime (§4.2)
    state = InstanceState(
        instance_id=instance_id, name=event["Name"], execution_id=str(start.execution_id),
        runtime_status=RuntimeStatus.Pending, created_time=created, last_updated_time=now,
        input=event.get("Input"), custom_status=old.custom_status if old else None,
        parent_instance_id=(parent.get("OrchestrationInstance") or {}).get("InstanceId"))
    state.etag = old.etag if old is not None else None
    return state


def _copy(state: InstanceState, now: datetime) -> InstanceState:
    return dataclasses.replace(state, last_updated_time=now)


def _delivered(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Timers fire when delivered: their event time is the delivery time."""
    if event["EventType"] == EventType.TimerFired:
        return {**event, "Timestamp": h.format_time(now)}
    return event


def _status_after_controls(status: RuntimeStatus,
                           events: list[dict[str, Any]]) -> tuple[RuntimeStatus, dict[str, Any] | None]:
    """The status after the suspend/resume events, and the last of them that took effect."""
    control = None
    for event in events:
        if event["EventType"] == EventType.ExecutionSuspended and not status.is_terminal:
            status, control = RuntimeStatus.Suspended, event
        elif event["EventType"] == EventType.ExecutionResumed and status == RuntimeStatus.Suspended:
            status, control = RuntimeStatus.Running, event
    return status, control


def _failed_episode(name: str, message: str) -> Episode:
    """An episode that could not run user code (the orchestrator is gone from the app)."""
    failure = Failure(f"Orchestrator function '{name}' failed: {message}", f"Message: {message}, StackTrace: ")
    return Episode(decisions=[], done=True, output=None, failure=failure, continue_as_new=None,
                   custom_status=None, completion_id=0, actions=[])


def outstanding_timers(*histories: list[dict[str, Any]]) -> list[int]:
    """Timers created and not yet fired: their messages are dropped when the execution ends."""
    events = list(itertools.chain(*histories))
    fired = {e["TimerId"] for e in events if e["EventType"] == EventType.TimerFired}
    return [e["EventId"] for e in events if e["EventType"] == EventType.TimerCreated and e["EventId"] not in fired]


_COMPLETIONS = {EventType.TaskCompleted: "TaskScheduledId", EventType.TaskFailed: "TaskScheduledId",
                EventType.SubOrchestrationInstanceCompleted: "TaskScheduledId",
                EventType.SubOrchestrationInstanceFailed: "TaskScheduledId", EventType.TimerFired: "TimerId"}
_COMPLETION_KEYS = {int(kind): key for kind, key in _COMPLETIONS.items()}  # int keys: faster lookups


def _without_redeliveries(past: list[dict[str, Any]], messages: list[Message]) -> list[Message]:
    """Drop a second completion of the same task or timer: stores deliver at least once, so a message
    consumed by an episode whose process died before deleting it can arrive again."""
    keys = _COMPLETION_KEYS
    done = {e[keys[kind]] for e in past if (kind := e["EventType"]) in keys}
    kept = []
    for message in messages:
        key = _COMPLETIONS.get(message.event["EventType"])
        task_id = message.event.get(key) if key else None
        if task_id is not None and task_id in done:
            log.info("instance '%s': dropped a redelivered %s for id %s", message.instance_id,
                     EventType(message.event["EventType"]).name, task_id)
            continue
        if task_id is not None:
            done.add(task_id)
        kept.append(message)
    return kept
