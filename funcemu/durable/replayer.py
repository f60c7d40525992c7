"""Replay a recorded history against the app's current orchestrator code and report divergence.

The recording (`recording.py`) gives the episodes' incoming events and the scheduling decisions the
orchestrator made. Each episode runs through `run_episode`, the engine's own path (the real SDK
handler plus the host's replay simulation), and each decision the code makes now is matched with the
recorded one at its sequence id. The first disagreement is reported in the engine's words:
"Non-Deterministic workflow detected: <orchestrator> at sequence id N: history has ... but the code now ...".

Rules, as DTFx applies them: a recorded decision must be made again, with the same kind and name, by the
episode in which it was recorded (rebuilt histories: before its completion arrives). A decision beyond
the recorded ones is new work when the history is still running, and a divergence when it completed.
A different output, or a failure where the history completed, is reported too.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funcemu.durable import replay
from funcemu.durable.history import Event, EventType, orchestrator_completed, orchestrator_started
from funcemu.durable.orchestrator import Decision, Episode, run_episode
from funcemu.durable.recording import PLACEHOLDER_BASE, Expected, Recording, load_recording
from funcemu.durable.registry import DurableRegistry
from funcemu.errors import FuncemuError

NONDETERMINISM = "Non-Deterministic workflow detected"
Handler = Callable[[str], str]


class ReplayError(FuncemuError):
    """The replay could not run: the app has no such orchestrator, or a different one was asked for."""


@dataclass
class ReplayReport:
    orchestrator: str
    instance_id: str
    source: str
    exact: bool
    events: int
    episodes: int = 0
    divergence: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.divergence is None

    def __str__(self) -> str:
        how = "exact sequence ids" if self.exact else "rebuilt from the management API's history"
        head = (f"Replayed {self.source}: orchestrator '{self.orchestrator}', instance '{self.instance_id}' "
                f"({_count(self.events, 'event')}, {_count(self.episodes, 'episode')}, {how}): ")
        lines = [head + ("no divergence." if self.ok else "DIVERGED")]
        if self.divergence:
            lines.append(f"  {self.divergence}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


class _Diverged(Exception):
    pass


def replay_file(app_root: Path, history: str | Path | dict[str, Any], *, orchestrator: str | None = None,
                apply_settings: bool = True) -> ReplayReport:
    """Replay a history file (or parsed document) against the orchestrators of the app in `app_root`."""
    recording = load_recording(history)
    if orchestrator is not None and orchestrator.lower() != recording.name.lower():
        raise ReplayError(f"{recording.source} was recorded from orchestrator '{recording.name}', "
                          f"not '{orchestrator}'")
    registry = load_orchestrators(app_root, apply_settings=apply_settings)
    spec = registry.orchestrator(recording.name)
    if spec is None:
        known = ", ".join(f"'{name}'" for name in registry.orchestrator_names()) or "none"
        raise ReplayError(f"{recording.source} was recorded from orchestrator '{recording.name}', but the app in "
                          f"{app_root} has no orchestrator of that name (its orchestrators: {known})")
    return replay_recording(recording, spec.callable, name=spec.durable_name)


def load_orchestrators(app_root: Path, *, apply_settings: bool = True) -> DurableRegistry:
    """Index the app as the host does; the process's sys.path is left as it was."""
    from funcemu.app import load_app
    from funcemu.config import load_config

    config = load_config(app_root, environ=None if apply_settings else dict(os.environ))
    with _restored_import_path():
        indexed = load_app(app_root, config.script_file)
    return DurableRegistry(indexed.functions)


@contextmanager
def _restored_import_path() -> Iterator[None]:
    saved = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved
        sys.modules.pop("function_app", None)


def replay_recording(recording: Recording, handler: Handler, *, name: str | None = None) -> ReplayReport:
    run = _Replay(recording, handler, name or recording.name)
    try:
        run.all_episodes()
    except _Diverged as diverged:
        run.report.divergence = str(diverged)
    return run.report


class _Replay:
    def __init__(self, recording: Recording, handler: Handler, name: str) -> None:
        self.recording, self.handler, self.name = recording, handler, name
        self.report = ReplayReport(name, recording.instance_id, recording.source, recording.exact,
                                   recording.events)
        self.matcher = _Matcher(recording, name)
        self.report.notes = self.matcher.notes
        self.past: list[Event] = []
        self.suspended = False
        self.last: Episode | None = None

    def all_episodes(self) -> None:
        for index, batch in enumerate(self.recording.batches):
            self.matcher.check_due(index, self.next_id)
            new = [orchestrator_started(batch.time)] + [self.matcher.resolve(e, self.next_id) for e in batch.events]
            if any(e["EventType"] == EventType.ExecutionTerminated for e in new):
                return  # the host runs no code for a terminate
            self.suspended = _suspended_after(self.suspended, new)
            decided: list[Event] = []
            if not self.suspended:
                self.report.episodes += 1
                self.last = self.episode(new, batch.time)
                decided = [event for event in map(self.matcher.take, self.last.decisions) if event is not None]
            self.past += new + decided + [orchestrator_completed(batch.time)]
            if self.last is not None and self.last.done:
                break
        self.matcher.check_due(len(self.recording.batches), self.next_id)
        self.outcome()

    @property
    def next_id(self) -> int:
        return self.last.completion_id if self.last is not None else 0

    def episode(self, new: list[Event], now: Any) -> Episode:
        episode = run_episode(self.handler, name=self.name, instance_id=self.recording.instance_id or "replay",
                              past=self.past, new=new, now=now)  # the SDK's own deprecations ignored inside
        if episode.failure is not None and episode.failure.reason.startswith(NONDETERMINISM):
            raise _Diverged(episode.failure.reason)
        return episode

    def outcome(self) -> None:
        """Compare how the code ends with how the history ended."""
        recorded, episode = self.recording.completion, self.last
        status = self.recording.status_name
        if episode is None or status == "Terminated":
            return
        if not episode.done:
            if recorded is not None and status in ("Completed", "Failed"):
                raise _Diverged(_message(self.name, self.next_id, f"ExecutionCompleted ({status})",
                                         "has not completed: it still waits"))
            return
        self.compare_completion(episode, recorded, status)

    def compare_completion(self, episode: Episode, recorded: Event | None, status: str) -> None:
        if episode.failure is not None:
            if status != "Failed":
                raise _Diverged(f"The code now fails where the history is {status}: {episode.failure.reason}")
            return
        now = _parsed(episode.output)
        if recorded is None:
            self.report.notes.append(f"the code now completes (output {json.dumps(now)}) where the recorded "
                                     f"history is still {status}")
        elif status == "Failed":
            self.report.notes.append(f"the code now completes (output {json.dumps(now)}) where the history failed")
        elif recorded.get("Result") is not None and _parsed(recorded.get("Result")) != now:
            self.report.notes.append(f"the output differs: history has {json.dumps(_parsed(recorded['Result']))}, "
                                     f"the code now returns {json.dumps(now)}")


class _Matcher:
    """The recorded decisions, and which of them the code has made again (placeholder -> real id)."""

    def __init__(self, recording: Recording, name: str) -> None:
        self.recording, self.name = recording, name
        self.pending: list[Expected] = list(recording.expected)
        self.ids: dict[int, int] = {}
        self.recorded_max = max((e.event["EventId"] for e in recording.expected), default=-1)
        self.completed = recording.completion is not None
        self.new_work: set[int] = set()
        self.notes: list[str] = []

    def take(self, decision: Decision) -> Event | None:
        """The recorded event for the code's new `decision` (with the code's id), None for new work."""
        op = _op(decision)
        group = self.candidates(op.id)
        if not group:
            self.unrecorded(op)
            return None
        fits = [e for e in group if replay.nondeterminism(self.name, _with_id(e.event, op.id), op) is None]
        if not fits:
            raise _Diverged(replay.nondeterminism(self.name, _with_id(group[0].event, op.id), op))
        chosen = next((e for e in fits if _same_input(e.event, decision)), fits[0])
        self.pending.remove(chosen)
        self.ids[chosen.event["EventId"]] = op.id
        return _with_id(chosen.event, op.id)

    def candidates(self, op_id: int) -> list[Expected]:
        if self.recording.exact:
            return [e for e in self.pending if e.event["EventId"] == op_id]
        first = min((e.group for e in self.pending), default=None)
        return [e for e in self.pending if e.group == first]

    def unrecorded(self, op: replay.Op) -> None:
        """A decision with no recorded counterpart: a divergence, or new work after a running history's end."""
        if self.recording.exact and op.id <= self.recorded_max:
            raise _Diverged(_message(self.name, op.id, "nothing with that id", f"scheduled {op.code}"))
        if self.completed:
            raise _Diverged(_message(self.name, op.id, f"ExecutionCompleted ({self.recording.status_name})",
                                     f"scheduled {op.code}"))
        if op.id not in self.new_work:  # work after the end of a running history: the host would do it
            self.new_work.add(op.id)
            self.notes.append(f"after the recorded history ends, the code now schedules {op.code} at sequence "
                              f"id {op.id} (new work, not a divergence: the history is still running)")

    def check_due(self, batch: int, next_id: int) -> None:
        late = next((e for e in self.pending if e.due <= batch), None)
        if late is not None:
            event = late.event if self.recording.exact else _with_id(late.event, next_id)
            raise _Diverged(replay.nondeterminism(self.name, event, None))

    def resolve(self, event: Event, next_id: int) -> Event:
        """An incoming event with its placeholder link replaced by the id the code gave the decision."""
        key = "TaskScheduledId" if "TaskScheduledId" in event else "TimerId"
        link = event.get(key)
        if not isinstance(link, int) or link > PLACEHOLDER_BASE or self.recording.exact:
            return dict(event)
        if link not in self.ids:
            scheduled = next(e.event for e in self.recording.expected if e.event["EventId"] == link)
            raise _Diverged(replay.nondeterminism(self.name, _with_id(scheduled, next_id), None))
        return {**event, key: self.ids[link]}


def _op(decision: Decision) -> replay.Op:
    event_id = int(decision.event["EventId"])
    return replay.Op(event_id, decision.kind, _code(decision), name=decision.name, instance_id=decision.instance_id)


def _code(decision: Decision) -> str:
    """What the code scheduled, in the words of the host simulation's messages."""
    if decision.kind == "timer":
        return "CreateTimer"
    if decision.kind == "suborchestration":
        return f"CallSubOrchestrator '{decision.name}'"
    if decision.kind == "event_sent":
        verb = "SignalEntity" if (decision.request or {}).get("signal") else "CallEntity"
        return f"{verb} '{decision.name}' on {decision.instance_id}"
    if decision.name == replay.HTTP_ACTIVITY and decision.request is not None:
        return f"CallHttp {decision.request.get('method')} {decision.request.get('uri')}"
    return f"CallActivity '{decision.name}'"


def _message(orchestrator: str, sequence_id: int, history: str, code: str) -> str:
    """The engine's non-determinism wording, for the cases its simulation has no event for."""
    return (f"{NONDETERMINISM}: {orchestrator} at sequence id {sequence_id}: history has {history} but the code "
            f"now {code}. {replay._CAUSES}")


def _with_id(event: Event, event_id: int) -> Event:
    return {**event, "EventId": event_id}


def _same_input(event: Event, decision: Decision) -> bool:
    """TaskScheduled stores the activity input as a JSON array holding the input text (DTFx)."""
    stored = event.get("Input")
    if event["EventType"] == EventType.TaskScheduled and isinstance(stored, str):
        try:
            parsed = json.loads(stored)
        except ValueError:
            return False
        stored = parsed[0] if isinstance(parsed, list) and len(parsed) == 1 else stored
    return stored == decision.input


def _parsed(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _suspended_after(suspended: bool, events: list[Event]) -> bool:
    for event in events:
        if event["EventType"] == EventType.ExecutionSuspended:
            suspended = True
        elif event["EventType"] == EventType.ExecutionResumed:
            suspended = False
    return suspended


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
