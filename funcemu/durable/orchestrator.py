"""One orchestration episode: build the context document, call the SDK handler, decide what happens.

Pure: no I/O, no clock. The engine passes the stored history (`past`) and this episode's new events
(`new`, starting with OrchestratorStarted), and applies the returned `Episode`. What the host would
do with the SDK's actions is simulated in `replay.py`. durable-protocol.md §2.1-§2.14.
"""

from __future__ import annotations

import json
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from azure.durable_functions.models.Task import TaskBase

from funcemu.durable import determinism, replay
from funcemu.durable.history import (
    Event,
    EventType,
    event_sent,
    played,
    sub_orchestration_created,
    task_scheduled,
    timer_created,
)
from funcemu.jsontext import compact

MARKER = "\n\n$OutOfProcData$:"
# Azure Storage provider defaults, as .NET TimeSpan "c" strings (§2.1).
LONG_TIMER_INTERVAL = "3.00:00:00"
MAXIMUM_SHORT_TIMER = "6.00:00:00"
_NOT_JSON = "Out of proc orchestrators must return a valid JSON schema"  # the host's wording
MAX_CUSTOM_STATUS_KB = 16  # DurableOrchestrationContext.SetCustomStatus
_TASK_ATTRIBUTES = {"_is_scheduled", "is_played", "state", "action_repr", "result"}
SDK_MODULES = r"azure\.(functions|durable_functions)"


@dataclass
class Failure:
    reason: str  # ExecutionCompleted.Result / the output, and what a parent orchestration sees
    details: str


@dataclass
class Decision:
    """A scheduling decision new in this episode. `event` goes to the history as is."""

    kind: Literal["activity", "timer", "suborchestration", "event_sent"]
    event: Event  # TaskScheduled / TimerCreated / SubOrchestrationInstanceCreated / EventSent
    name: str | None = None  # activity or sub-orchestrator name; entity operation
    input: str | None = None  # see _DECISIONS for what it holds per kind
    instance_id: str | None = None  # sub-orchestration instance, or target entity "@name@key"
    fire_at: datetime | None = None
    canceled: bool = False  # a timer the code already canceled: record it, never fire it
    request: dict[str, Any] | None = None  # call_http request, or entity RequestMessage


@dataclass
class Episode:
    decisions: list[Decision]
    done: bool
    output: str | None  # compact JSON text of the output value
    failure: Failure | None
    continue_as_new: str | None  # ExecutionStarted.Input of the next execution
    custom_status: str | None  # compact JSON text
    completion_id: int  # EventId of ExecutionCompleted
    actions: list[Any]  # the SDK's raw action lists, for diagnostics
    canceled_timer_ids: list[int] = field(default_factory=list)  # timers never to fire (old or new)


@dataclass
class _Result:
    """What the handler produced: its state document, and the error it reported, if any."""

    state: dict[str, Any]
    error: str | None = None
    stack: str = ""


class PlayedText:
    """The JSON text of a history prefix as the handler receives it (§2.1: every event but
    OrchestratorStarted marked played), encoded once per event and extended as the history grows.

    The owner keeps one per history list and extends it only with that list: the events it already
    covers must not change (a history is append-only within an execution)."""

    __slots__ = ("count", "chunks", "tail", "tail_key")

    def __init__(self) -> None:
        self.count = 0  # how many events of the history are encoded
        self.chunks: list[str] = []  # their JSON texts, without the list's brackets
        self.tail = ""  # the document after the history, for the fields in tail_key
        self.tail_key: tuple[Any, ...] | None = None

    def extend(self, events: list[Event]) -> None:
        if len(events) < self.count:  # not the history it was built for: start over
            self.count, self.chunks = 0, []
        if len(events) > self.count:
            self.chunks.append(json.dumps(played(events[self.count:]))[1:-1])
            self.count = len(events)


@dataclass
class HandlerReply:
    """What one handler call produced, as text (so it can cross a process boundary): the state
    document the handler returned or attached to its exception (`$OutOfProcData$`), and the error."""

    text: str | None
    error: str | None = None
    stack: str = ""
    raised: str = ""  # the type name of the exception behind `error`, when the code raised one


@dataclass
class EpisodeCall:
    """One episode's handler input and what `finish_episode` needs besides the reply."""

    name: str
    instance_id: str
    history: list[Event]
    started: Event
    now: datetime
    document: str
    replaying: bool  # the episode has events of earlier episodes: the determinism watch applies


def run_episode(handler: Callable[[str], str], *, name: str, instance_id: str, past: list[Event],
                new: list[Event], parent_instance_id: str | None = None, now: datetime,
                played_text: PlayedText | None = None) -> Episode:
    """Run one episode of orchestrator `name` in this process. `past` is every event of the current
    execution from earlier episodes; `new` starts with OrchestratorStarted(now). `played_text`, when
    given, holds the played JSON of a prefix of `past` (see PlayedText); it is extended to all of `past`."""
    call = prepare_episode(name=name, instance_id=instance_id, past=past, new=new,
                           parent_instance_id=parent_instance_id, now=now, played_text=played_text)
    return finish_episode(call, call_handler(handler, name, call.document, call.replaying))


def prepare_episode(*, name: str, instance_id: str, past: list[Event], new: list[Event],
                    parent_instance_id: str | None = None, now: datetime,
                    played_text: PlayedText | None = None) -> EpisodeCall:
    """The handler's document for the episode (run_episode's first half)."""
    started, replaying = _started_event(past, new)
    if played_text is None:
        played_text = PlayedText()
    played_text.extend(past)
    document = _document(played_text, new, instance_id, parent_instance_id, started, replaying)
    return EpisodeCall(name, instance_id, past + new, started, now, document, bool(past))


@contextmanager
def sdk_deprecations_ignored() -> Iterator[None]:
    """The SDKs' own DeprecationWarnings (`df_loads was called without expected_type`, ...) are ignored
    inside: under `-W error`, `filterwarnings = error` or PYTHONWARNINGS=error they would otherwise turn
    the SDK's own conversions into errors, which the worker does not. Warnings from the user's code
    (other modules) are left to the user's filters."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=SDK_MODULES)
        yield


def call_handler(handler: Callable[[str], str], name: str, document: str, replaying: bool) -> HandlerReply:
    """Call the SDK handler, watched for non-deterministic calls while replaying (determinism.py)."""
    with determinism.watch(name, handler, replaying=replaying), sdk_deprecations_ignored():
        try:
            returned = handler(document)
        except Exception as exc:  # the SDK reports orchestrator failures by raising (§2.9)
            return _reply_from_exception(exc)
    if isinstance(returned, bytes):
        returned = returned.decode("utf-8", "replace")
    return HandlerReply(returned if isinstance(returned, str) else None)


def finish_episode(call: EpisodeCall, reply: HandlerReply) -> Episode:
    """What the host does with the handler's reply (run_episode's second half)."""
    name, history = call.name, call.history
    result = _result(reply)
    actions = result.state.get("actions") or []
    status_failure = _custom_status_failure(name, result)
    if status_failure:  # thrown before the actions are replayed: no decisions
        return Episode(decisions=[], done=True, output=None, failure=status_failure, continue_as_new=None,
                       custom_status=None, completion_id=_next_sequence_id(history), actions=actions)
    steps, layout_error = _steps(result.state)
    if layout_error and not result.error:
        result = _Result({}, layout_error)
    if result.error and not result.state:  # no actions to replay: the host fails the instance at once
        return Episode(decisions=[], done=True, output=None, failure=_failure(name, result), continue_as_new=None,
                       custom_status=None, completion_id=_next_sequence_id(history), actions=actions)
    execution_id = (call.started.get("OrchestrationInstance") or {}).get("ExecutionId") or ""
    sim = replay.simulate(steps, history, orchestrator=name, instance_id=call.instance_id,
                          execution_id=execution_id)
    if sim.nondeterminism:
        reason = sim.nondeterminism
        if result.error and sim.ran_out:  # DTFx reports the mismatch; say what stopped the code too
            raised = f"{reply.raised}: {result.error}" if reply.raised else result.error
            reason += f" While replaying, the orchestrator raised {raised}, which stopped it before it scheduled that."
        details = f"{reason}\n{result.stack}" if result.error and result.stack else reason
        return Episode(decisions=[], done=True, output=None, failure=Failure(reason, details),
                       continue_as_new=None, custom_status=None, completion_id=sim.next_id, actions=actions)
    return _episode(name, result, sim, call.now, actions)


def context_document(history: list[Event], instance_id: str, parent_instance_id: str | None,
                     started: Event) -> str:
    """The JSON the handler receives (§2.1), from the whole history as the handler sees it (earlier
    events already marked played). `run_episode` builds the same text incrementally (`_document`)."""
    return json.dumps({"history": history, **_document_fields(instance_id, parent_instance_id, started,
                                                                bool(started.get("IsPlayed")))})


_HISTORY_OPEN = '{"history": ['


def _document(played_text: PlayedText, new: list[Event], instance_id: str, parent_instance_id: str | None,
              started: Event, replaying: bool) -> str:
    """`context_document` of played(past) + new, from the played text of `past`: the same bytes."""
    key = (instance_id, parent_instance_id, started.get("Input"), replaying)
    if played_text.tail_key != key:  # the rest of the document only changes with these
        fields = _document_fields(instance_id, parent_instance_id, started, replaying)
        played_text.tail = json.dumps({"history": [], **fields})[len(_HISTORY_OPEN):]
        played_text.tail_key = key
    chunks = (played_text.chunks + [json.dumps(new)[1:-1]]) if new else played_text.chunks
    return _HISTORY_OPEN + ", ".join(chunks) + played_text.tail


def _document_fields(instance_id: str, parent_instance_id: str | None, started: Event,
                     replaying: bool) -> dict[str, Any]:
    return {
        "input": _parsed_input(started.get("Input")),
        "instanceId": instance_id,
        "isReplaying": replaying,
        "parentInstanceId": parent_instance_id,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
        "longRunningTimerIntervalDuration": LONG_TIMER_INTERVAL,
        "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER,
        "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
    }


def _started_event(past: list[Event], new: list[Event]) -> tuple[Event, bool]:
    """The execution's ExecutionStarted, and the handler's isReplaying: its IsPlayed as the handler
    sees it (always set once it is in `past`)."""
    for event in past:
        if event["EventType"] == EventType.ExecutionStarted:
            return event, True
    started = _execution_started(new)
    return started, bool(started.get("IsPlayed"))


def _next_sequence_id(history: list[Event]) -> int:
    return 1 + max((e["EventId"] for e in history if e.get("EventId", -1) >= 0), default=-1)


def _execution_started(history: list[Event]) -> Event:
    for event in history:
        if event["EventType"] == EventType.ExecutionStarted:
            return event
    raise ValueError("orchestration history has no ExecutionStarted event")


def _parsed_input(stored: str | None) -> Any:
    """The stored Input is JSON text; the host parses it once (GetInputAsJson). Text that is not JSON
    (never written by funcemu) is passed through unparsed."""
    if stored is None:
        return None
    try:
        return json.loads(stored)
    except ValueError:
        return stored


def _reply_from_exception(exc: Exception) -> HandlerReply:
    message = str(exc)
    origin = exc.__cause__ or exc
    stack = "".join(traceback.format_tb(origin.__traceback__))
    if MARKER not in message:
        return HandlerReply(None, _error_text(exc), stack, type(origin).__name__)
    head, _, tail = message.partition(MARKER)
    return HandlerReply(tail, head, stack, type(origin).__name__)


def _result(reply: HandlerReply) -> _Result:
    """The parsed state and the error: the state's own `error` wins over the exception's text."""
    if reply.text is None:
        return _Result({}, reply.error or _NOT_JSON, reply.stack)
    state = _parse_state(reply.text)
    if state is None:
        return _Result({}, _NOT_JSON, reply.stack)
    return _Result(state, None if reply.error is None else (state.get("error") or reply.error), reply.stack)


def _parse_state(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, (str, bytes)):
        return None
    try:
        state = json.loads(text)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def _error_text(exc: Exception) -> str:
    """An exception without the SDK's state: the worker reports "<Type>: <message>". A yielded
    non-task surfaces as an AttributeError deep in the SDK, so say what happened instead."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, AttributeError) and exc.name in _TASK_ATTRIBUTES and not isinstance(exc.obj, TaskBase):
        return (f"the orchestrator yielded {exc.obj!r} ({type(exc.obj).__name__}), which is not a durable "
                f"task; yield only tasks made by the context (call_activity, create_timer, task_all, ...). "
                f"SDK error: {text}")
    return text


def _steps(state: dict[str, Any]) -> tuple[list[replay.Step], str | None]:
    """V2/V3 (schemaVersion >= 1): the one inner list, one action per step; V1: the inner lists."""
    actions = state.get("actions") or []
    if not isinstance(actions, list) or not all(isinstance(inner, list) for inner in actions):
        return [], _NOT_JSON
    if _schema_version(state) == 0:
        return list(actions), None
    if len(actions) != 1:
        return [], (f"With OOProc schema ReplayPatchV1, expected actions array to be of length 1 in "
                    f"outer layer but got size: {len(actions)}")
    return list(actions[0]), None


def _schema_version(state: dict[str, Any]) -> int:
    try:
        return int(state.get("schemaVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _episode(name: str, result: _Result, sim: replay.Replay, now: datetime, actions: list[Any]) -> Episode:
    """The host completes or fails the instance only once its replay got through every action."""
    state = result.state
    failure = _failure(name, result) if result.error and sim.finished else None
    done = sim.finished and (failure is not None or bool(state.get("isDone")))
    completed = done and failure is None
    return Episode(
        decisions=[_DECISIONS[op.kind](op, now) for op in sim.new],
        done=done,
        output=compact(state["output"]) if completed and state.get("output") is not None else None,
        failure=failure,
        continue_as_new=_stored(sim.continue_as_new) if completed else None,
        custom_status=compact(state["customStatus"]) if state.get("customStatus") is not None else None,
        completion_id=sim.next_id,
        actions=actions,
        canceled_timer_ids=sim.canceled_timers,
    )


def _custom_status_failure(name: str, result: _Result) -> Failure | None:
    """The host applies `customStatus` first (§2.3) with SetCustomStatus, which throws ArgumentException
    over 16 KB of UTF-16 (§2.12; the size is truncated to whole KB). The shim reports that exception
    like any other; but when the SDK reported an error too, it escapes the shim's handler and DTFx
    fails the instance with the bare message."""
    status = result.state.get("customStatus")
    if status is None:
        return None
    size = len(compact(status).encode("utf-16-le", "surrogatepass")) // 1024
    if size <= MAX_CUSTOM_STATUS_KB:
        return None
    message = (f"The UTF-16 size of the JSON-serialized payload must not exceed {MAX_CUSTOM_STATUS_KB:,} KB. "
               f"The current payload size is {size:,} KB.")
    if result.error:
        return Failure(message, f"Unhandled exception while executing orchestration: "
                                f"System.ArgumentException: {message}\n\t")
    return Failure(f"Orchestrator function '{name}' failed: {message}", _argument_exception_json(message))


def _argument_exception_json(message: str) -> str:
    """Utils.SerializeCause of the ArgumentException (the .NET stack trace is not known here)."""
    return compact({"$type": "System.ArgumentException, System.Private.CoreLib",
                    "ClassName": "System.ArgumentException", "Message": message, "Data": None,
                    "InnerException": None, "HelpURL": None, "StackTraceString": None,
                    "RemoteStackTraceString": None, "RemoteStackIndex": 0, "ExceptionMethod": None,
                    "HResult": -2147024809, "Source": "Microsoft.Azure.WebJobs.Extensions.DurableTask",
                    "WatsonBuckets": None, "ParamName": None})


def _failure(name: str, result: _Result) -> Failure:
    return Failure(f"Orchestrator function '{name}' failed: {result.error}",
                   f"Message: {result.error}, StackTrace: {result.stack}")


def _stored(text: str | None) -> str | None:
    """The host serializes the SDK's input text as a .NET string: a JSON string holding JSON text."""
    return None if text is None else json.dumps(text, ensure_ascii=False)


# -- one decision builder per kind; `input` is what the engine hands on ----------------------------

def _activity(op: replay.Op, now: datetime) -> Decision:
    """input: the activity's JSON text (TaskScheduled stores it wrapped in an array)."""
    return Decision("activity", task_scheduled(now, op.id, op.name or "", op.input), name=op.name,
                    input=op.input, request=op.request)


def _timer(op: replay.Op, now: datetime) -> Decision:
    fire_at = op.fire_at or now  # every timer op carries its FireAt
    return Decision("timer", timer_created(now, op.id, fire_at), fire_at=fire_at, canceled=op.canceled)


def _sub_orchestration(op: replay.Op, now: datetime) -> Decision:
    """input: the child's ExecutionStarted.Input (stored form, §2.10)."""
    stored = _stored(op.input)
    return Decision("suborchestration",
                    sub_orchestration_created(now, op.id, op.name or "", op.instance_id or "", stored),
                    name=op.name, input=stored, instance_id=op.instance_id)


def _event_sent(op: replay.Op, now: datetime) -> Decision:
    """input: the RequestMessage JSON (EventSent.Input); name: the entity operation."""
    event = event_sent(now, op.id, op.instance_id or "", replay.ENTITY_EVENT_NAME, op.input)
    return Decision("event_sent", event, name=op.name, input=op.input, instance_id=op.instance_id,
                    request=op.request)


_DECISIONS: dict[str, Callable[[replay.Op, datetime], Decision]] = {
    "activity": _activity, "timer": _timer, "suborchestration": _sub_orchestration, "event_sent": _event_sent,
}
