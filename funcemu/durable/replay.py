"""What the .NET host does with an orchestrator's action list: a simulation of the out-of-proc shim.

The real host (`OutOfProcOrchestrationShim` on DTFx) re-runs the SDK's actions against the history on
every episode: actions start in order, each scheduling call takes the next sequence id, and history
events are fed in order; a completion resumes the waiting code at once (retry timers and re-attempts
are created right then). A scheduling call whose id has no TaskScheduled/TimerCreated/
SubOrchestrationInstanceCreated/EventSent in the history is a new decision. durable-protocol.md
§2.5-§2.8, §2.10, §2.13, §2.14, §4.4.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from funcemu.durable.history import Event, EventType, format_time, parse_time

HTTP_ACTIVITY = "BuiltIn::HttpActivity"
ENTITY_EVENT_NAME = "op"  # EventSent.Name of every entity operation request
_MIN_TIME = "0001-01-01T00:00:00"  # .NET DateTime.MinValue: "no predecessor" in a RequestMessage
_CAUSES = ("The orchestrator code was changed while this instance was running, or it decides what to "
           "schedule from values that differ between replays (current time, random numbers, I/O); use "
           "context.current_utc_datetime and context.new_uuid() instead.")

OpKind = Literal["activity", "timer", "suborchestration", "event_sent"]
Action = dict[str, Any]
Step = Action | list[Action]  # V2/V3: one action; V1: one inner list


@dataclass
class Op:
    """One scheduling call of the shim; it owns sequence id `id`."""

    id: int
    kind: OpKind
    code: str  # what the code scheduled, for messages: "CallActivity 'hello'"
    name: str | None = None  # activity / sub-orchestrator name, or entity operation
    input: str | None = None  # the action's JSON text (event_sent: the RequestMessage JSON)
    instance_id: str | None = None  # sub-orchestration instance, or target entity
    fire_at: datetime | None = None
    canceled: bool = False
    request: dict[str, Any] | None = None  # call_http request, or entity RequestMessage

    @property
    def label(self) -> str | None:
        if self.kind == "event_sent":
            return f"'{self.name}' on {self.instance_id}"
        return None if self.kind == "timer" else f"'{self.name}'"


@dataclass
class Replay:
    new: list[Op]  # scheduling calls without a history event, in id order
    finished: bool  # the shim got through every action; only then can the instance complete
    next_id: int
    canceled_timers: list[int] = field(default_factory=list)
    continue_as_new: str | None = None  # the ContinueAsNew action's input, once the shim reached it
    nondeterminism: str | None = None
    ran_out: bool = False  # the mismatch is history the code had not scheduled (yet): its actions ran out


@dataclass(frozen=True)
class RetryPolicy:
    """The host's RetryOptions (RetryOptionsConverter defaults; the Python SDK sends only two keys)."""

    first_interval: timedelta
    max_attempts: int
    backoff: float = 1.0
    max_interval: timedelta = timedelta(days=6)
    timeout: timedelta | None = None

    @classmethod
    def from_json(cls, options: dict[str, Any]) -> RetryPolicy:
        def ms(key: str) -> timedelta | None:
            value = options.get(key)
            return None if value is None else timedelta(milliseconds=float(value))

        return cls(first_interval=ms("firstRetryIntervalInMilliseconds") or timedelta(0),
                   max_attempts=int(options.get("maxNumberOfAttempts") or 0),
                   backoff=float(options.get("backoffCoefficient") or 1.0),
                   max_interval=ms("maxRetryIntervalInMilliseconds") or timedelta(days=6),
                   timeout=ms("retryTimeoutInMilliseconds"))

    def delay(self, attempt: int, first_attempt: datetime, now: datetime) -> timedelta:
        """DTFx ComputeNextDelay: first * backoff^attempt, capped; zero once the retry timeout passed."""
        if self.timeout is not None and now >= first_attempt + self.timeout:
            return timedelta(0)
        try:
            return min(self.first_interval * (self.backoff ** attempt), self.max_interval)
        except OverflowError:
            return self.max_interval


class Node:
    """A .NET task in the simulation: settles once, then runs its continuations synchronously."""

    __slots__ = ("done", "failed", "_then")

    def __init__(self) -> None:
        self.done = False
        self.failed = False
        self._then: list[Callable[[Node], None]] = []

    def then(self, callback: Callable[[Node], None]) -> None:
        if self.done:
            callback(self)
        else:
            self._then.append(callback)

    def settle(self, failed: bool = False) -> None:
        if self.done:
            return
        self.done, self.failed = True, failed
        callbacks, self._then = self._then, []
        for callback in callbacks:
            callback(self)


def _settled() -> Node:
    node = Node()
    node.settle()
    return node


def when_all(nodes: list[Node]) -> Node:
    """Task.WhenAll: settles after *every* child settled, failed if any child failed."""
    result, left = Node(), [len(nodes)]

    def child_done(_: Node) -> None:
        left[0] -= 1
        if left[0] == 0:
            result.settle(failed=any(node.failed for node in nodes))

    for node in nodes:
        node.then(child_done)
    if not nodes:
        result.settle()
    return result


def when_any(nodes: list[Node]) -> Node:
    """Task.WhenAny: settles (successfully) with the first child, whatever its outcome."""
    result = Node()
    for node in nodes:
        node.then(lambda _: result.settle())
    if not nodes:
        result.settle()
    return result


class _Mismatch(Exception):
    """The history and the code disagree at a sequence id; stops the replay."""

    def __init__(self, message: str, ran_out: bool) -> None:
        super().__init__(message)
        self.ran_out = ran_out


def nondeterminism(orchestrator: str, event: Event, op: Op | None) -> str | None:
    """The failure reason when `event` (a scheduling event from history) does not match what the code
    scheduled at its id (`op`, None when nothing), else None. Names compare case-insensitively, as in DTFx."""
    kind = EventType(event["EventType"])
    label = _history_label(event)
    if op is not None and op.kind == _SCHEDULING[kind] and (op.label or "").lower() == (label or "").lower():
        return None
    history = f"{kind.name} {label}" if label else kind.name
    code = op.code if op is not None else "nothing with that id (yet)"
    return (f"Non-Deterministic workflow detected: {orchestrator} at sequence id {event['EventId']}: "
            f"history has {history} but the code now scheduled {code}. {_CAUSES}")


_SCHEDULING: dict[EventType, OpKind] = {
    EventType.TaskScheduled: "activity", EventType.TimerCreated: "timer",
    EventType.SubOrchestrationInstanceCreated: "suborchestration", EventType.EventSent: "event_sent",
}


_SCHEDULING_KINDS: dict[int, OpKind] = {int(kind): op_kind for kind, op_kind in _SCHEDULING.items()}
_ORCHESTRATOR_STARTED = int(EventType.OrchestratorStarted)
_EXECUTION_RESUMED = int(EventType.ExecutionResumed)
_EXECUTION_TERMINATED = int(EventType.ExecutionTerminated)
_EVENT_SENT = int(EventType.EventSent)


def _history_label(event: Event) -> str | None:
    kind = EventType(event["EventType"])
    if kind == EventType.TimerCreated:
        return None
    if kind == EventType.EventSent:
        return f"'{_request_of(event).get('op')}' on {event.get('InstanceId')}"
    return f"'{event.get('Name')}'"


def _request_of(event: Event) -> dict[str, Any]:
    try:
        request = json.loads(event.get("Input") or "{}")
    except ValueError:
        return {}
    return request if isinstance(request, dict) else {}


def simulate(steps: list[Step], history: list[Event], *, orchestrator: str, instance_id: str,
             execution_id: str) -> Replay:
    """Replay `steps` (V2/V3: the single inner action list; V1: the list of inner lists) against
    `history` (the whole current execution, in order) as the host would."""
    shim = _Shim(steps, history, orchestrator=orchestrator, instance_id=instance_id,
                 execution_id=execution_id)
    feed = shim.feed
    try:
        for event in history:
            feed(event)
    except _Mismatch as mismatch:
        return Replay([], False, shim.next_id, nondeterminism=str(mismatch), ran_out=mismatch.ran_out)
    new = sorted(shim.pending.values(), key=lambda op: op.id)
    return Replay(new, shim.finished, shim.next_id, shim.canceled, shim.continue_as_new)


class _Shim:
    """State of one simulated episode: sequence ids, open tasks, event waiters, the action cursor."""

    def __init__(self, steps: list[Step], history: list[Event], *, orchestrator: str,
                 instance_id: str, execution_id: str) -> None:
        self.steps, self.cursor, self.finished = steps, 0, False
        self.orchestrator, self.instance_id, self.execution_id = orchestrator, instance_id, execution_id
        self.history = history
        self.now_text: str | None = history[0]["Timestamp"] if history else None  # parsed when needed
        self.next_id = 0
        self.pending: dict[int, Op] = {}  # created, no history event seen yet
        self.open: dict[int, Node] = {}  # waiting for a completion event
        self.waiters: dict[str, list[Node]] = {}  # per event name, a stack (the newest waiter wins)
        self.buffered: Counter[str] = Counter()  # events raised before anyone waited
        self._sent: dict[int, dict[str, Any]] | None = None
        self.last_sent: dict[str, str] = {}
        self.canceled: list[int] = []
        self.continue_as_new: str | None = None
        self.suspended = False
        self.held: list[Event] = []

    @property
    def now(self) -> datetime:
        """The time of the current episode (its OrchestratorStarted)."""
        return datetime.min if self.now_text is None else parse_time(self.now_text)

    @property
    def sent(self) -> dict[int, dict[str, Any]]:
        """The RequestMessage of every EventSent in the history, by EventId."""
        if self._sent is None:
            self._sent = {e["EventId"]: _request_of(e) for e in self.history if e["EventType"] == _EVENT_SENT}
        return self._sent

    # -- history ---------------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        kind = event["EventType"]
        if kind == _ORCHESTRATOR_STARTED:
            self.now_text = event["Timestamp"]
        elif self.suspended and kind != _EXECUTION_RESUMED and kind != _EXECUTION_TERMINATED:
            self.held.append(event)  # DTFx holds events back while suspended (§2.14)
        else:
            handler = _EVENT_HANDLERS.get(kind)
            if handler is not None:
                handler(self, event)

    def match(self, event: Event) -> None:
        op = self.pending.pop(event["EventId"], None)
        if op is not None and op.kind == _SCHEDULING_KINDS.get(event["EventType"]) and (
                op.kind == "timer" or (op.kind != "event_sent" and op.name == event.get("Name"))):
            return  # the common case, decided without building the labels nondeterminism() compares
        message = nondeterminism(self.orchestrator, event, op)
        if message:
            raise _Mismatch(message, op is None)

    def complete(self, task_id: int, failed: bool) -> None:
        node = self.open.pop(task_id, None)
        if node is not None:  # else a duplicate or a canceled timer: DTFx ignores it
            node.settle(failed)

    def raise_event(self, name: str) -> None:
        if self.continue_as_new is not None:
            return  # dropped: the shim continues as new without preserving unprocessed events
        key = name.lower()
        stack = self.waiters.get(key)
        if not stack:
            self.buffered[key] += 1
            return
        node = stack.pop()
        if not stack:
            del self.waiters[key]
        node.settle()

    def resume(self) -> None:
        self.suspended = False
        held, self.held = self.held, []
        for event in held:
            self.feed(event)

    # -- actions ---------------------------------------------------------------------------------

    def advance(self, _: Node | None = None) -> None:
        """Start the next top-level step once the previous one settled (ProcessAsyncActionsV2/V1)."""
        while self.cursor < len(self.steps):
            step = self.steps[self.cursor]
            self.cursor += 1
            node = self.start_set(step) if isinstance(step, list) else self.start(step)
            if not node.done:
                node.then(self.advance)
                return
        self.finished = True

    def start_set(self, actions: list[Action]) -> Node:
        """V1: start every action of the set, then wait for any of them (fire-and-forget excluded)."""
        nodes = [node for node in map(self.start_or_none, actions) if node is not None]
        return when_any(nodes) if nodes else _settled()

    def start(self, action: Action) -> Node:
        return self.start_or_none(action) or _settled()

    def start_or_none(self, action: Action) -> Node | None:
        try:
            starter = _STARTERS.get(int(action.get("actionType", -1)))
        except (TypeError, ValueError):
            starter = None
        return starter(self, action) if starter else None

    def new_op(self, kind: OpKind, code: str, **fields: Any) -> Op:
        op = Op(self.next_id, kind, code, **fields)
        self.next_id += 1
        self.pending[op.id] = op
        return op

    def schedule(self, kind: OpKind, code: str, **fields: Any) -> Node:
        op = self.new_op(kind, code, **fields)
        if kind == "suborchestration" and not (op.instance_id or "").strip():
            op.instance_id = f"{self.execution_id}:{op.id}"  # DTFx's default sub-orchestration id
        node = self.open[op.id] = Node()
        return node

    def timer(self, fire_at: datetime, canceled: bool = False, code: str = "CreateTimer") -> Node:
        """A canceled timer is still created (it keeps its id) but its task is canceled at once."""
        op, node = self.new_op("timer", code, fire_at=fire_at, canceled=canceled), Node()
        if canceled:
            self.canceled.append(op.id)
            node.settle(failed=True)
        else:
            self.open[op.id] = node
        return node

    def wait_event(self, name: str) -> Node:
        key, node = name.lower(), Node()
        if self.buffered[key]:
            self.buffered[key] -= 1
            node.settle()
        else:
            self.waiters.setdefault(key, []).append(node)
        return node

    def send_entity(self, action: Action, signal: bool) -> dict[str, Any]:
        """EventSent to an entity; the request id comes from history when the message was already sent."""
        target, operation = action.get("instanceId") or "", action.get("operation") or ""
        code = f"{'SignalEntity' if signal else 'CallEntity'} '{operation}' on {target}"
        op = self.new_op("event_sent", code, name=operation, instance_id=target)
        request = self.sent.get(op.id) or self.request_message(action, target, signal)
        op.request, op.input = request, json.dumps(request, separators=(",", ":"), ensure_ascii=False)
        self.last_sent[target] = request.get("Timestamp") or _MIN_TIME
        return request

    def request_message(self, action: Action, target: str, signal: bool) -> dict[str, Any]:
        """RequestMessage JSON (§4.4); `input` is the JSON text of the action's JSON text."""
        request: dict[str, Any] = {"op": action.get("operation")}
        if signal:
            request["signal"] = True
        if action.get("input") is not None:
            request["input"] = json.dumps(action["input"], ensure_ascii=False)
        predecessor = self.last_sent.get(target, _MIN_TIME)
        stamp = self.now
        if predecessor != _MIN_TIME:
            previous = parse_time(predecessor)
            if previous >= stamp:
                stamp = previous + timedelta(microseconds=1)  # strictly increasing per target
        return {**request, "id": str(uuid.uuid4()), "parent": self.instance_id,
                "parentExecution": self.execution_id, "Timestamp": format_time(stamp),
                "Predecessor": predecessor}


class _Retry:
    """DTFx RetryInterceptor: attempt, on failure wait a retry timer and attempt again; after the
    last failed attempt a timer firing at once (the "dummy" timer), then the failure (§2.6)."""

    def __init__(self, shim: _Shim, action: Action, call: Callable[[], Node], what: str) -> None:
        self.shim, self.call, self.what = shim, call, what
        self.policy = RetryPolicy.from_json(action.get("retryOptions") or {})
        self.first_attempt = shim.now
        self.result = Node()
        self.attempt(0)

    def attempt(self, number: int) -> None:
        self.call().then(lambda outcome: self.attempted(number, outcome))

    def attempted(self, number: int, outcome: Node) -> None:
        shim = self.shim
        if not outcome.failed:
            self.result.settle()
            return
        code = f"CreateTimer (retry of {self.what})"
        if number + 1 >= self.policy.max_attempts:
            shim.timer(shim.now, code=code).then(lambda _: self.result.settle(failed=True))
            return
        delay = self.policy.delay(number, self.first_attempt, shim.now)
        if not delay:
            self.result.settle(failed=True)
            return
        shim.timer(shim.now + delay, code=code).then(lambda _: self.attempt(number + 1))


# -- one starter per action type (AsyncActionType) -----------------------------------------------

def _activity(shim: _Shim, action: Action) -> Node:
    name = action.get("functionName")
    return shim.schedule("activity", f"CallActivity '{name}'", name=name, input=action.get("input"))


def _activity_with_retry(shim: _Shim, action: Action) -> Node:
    name = action.get("functionName")
    code = f"CallActivityWithRetry '{name}'"
    return _Retry(shim, action, lambda: shim.schedule("activity", code, name=name, input=action.get("input")),
                  f"'{name}'").result


def _sub_orchestrator(shim: _Shim, action: Action) -> Node:
    name = action.get("functionName")
    return shim.schedule("suborchestration", f"CallSubOrchestrator '{name}'", name=name,
                         input=action.get("input"), instance_id=action.get("instanceId"))


def _sub_orchestrator_with_retry(shim: _Shim, action: Action) -> Node:
    name = action.get("functionName")
    code = f"CallSubOrchestratorWithRetry '{name}'"

    def call() -> Node:
        return shim.schedule("suborchestration", code, name=name, input=action.get("input"),
                             instance_id=action.get("instanceId"))

    return _Retry(shim, action, call, f"'{name}'").result


def _continue_as_new(shim: _Shim, action: Action) -> None:
    shim.continue_as_new = action.get("input") or "null"


def _create_timer(shim: _Shim, action: Action) -> Node:
    fire_at = parse_time(action["fireAt"]) if action.get("fireAt") else shim.now
    return shim.timer(fire_at, canceled=bool(action.get("isCanceled")))


def _wait_for_external_event(shim: _Shim, action: Action) -> Node:
    return shim.wait_event(action.get("externalEventName") or "")


def _call_entity(shim: _Shim, action: Action) -> Node:
    request = shim.send_entity(action, signal=False)
    return shim.wait_event(str(request.get("id")))  # the entity answers with EventRaised{Name: id}


def _signal_entity(shim: _Shim, action: Action) -> None:
    shim.send_entity(action, signal=True)


def _call_http(shim: _Shim, action: Action) -> Node:
    """One BuiltIn::HttpActivity task; 202 polling happens inside it (§2.13)."""
    request = action.get("httpRequest") or {}
    code = f"CallHttp {request.get('method')} {request.get('uri')}"
    text = json.dumps(request, separators=(",", ":"), ensure_ascii=False)
    return shim.schedule("activity", code, name=HTTP_ACTIVITY, input=text, request=request)


def _when_any(shim: _Shim, action: Action) -> Node:
    return when_any([shim.start(child) for child in action.get("compoundActions") or []])


def _when_all(shim: _Shim, action: Action) -> Node:
    return when_all([shim.start(child) for child in action.get("compoundActions") or []])


_STARTERS: dict[int, Callable[[_Shim, Action], Node | None]] = {
    0: _activity, 1: _activity_with_retry, 2: _sub_orchestrator, 3: _sub_orchestrator_with_retry,
    4: _continue_as_new, 5: _create_timer, 6: _wait_for_external_event, 7: _call_entity, 8: _call_http,
    9: _signal_entity, 11: _when_any, 12: _when_all,
}

_EVENT_HANDLERS: dict[int, Callable[[_Shim, Event], None]] = {int(kind): handler for kind, handler in {
    EventType.ExecutionStarted: lambda shim, _: shim.advance(),
    EventType.TaskScheduled: _Shim.match,
    EventType.TimerCreated: _Shim.match,
    EventType.SubOrchestrationInstanceCreated: _Shim.match,
    EventType.EventSent: _Shim.match,
    EventType.TaskCompleted: lambda shim, e: shim.complete(e["TaskScheduledId"], failed=False),
    EventType.TaskFailed: lambda shim, e: shim.complete(e["TaskScheduledId"], failed=True),
    EventType.SubOrchestrationInstanceCompleted: lambda shim, e: shim.complete(e["TaskScheduledId"], False),
    EventType.SubOrchestrationInstanceFailed: lambda shim, e: shim.complete(e["TaskScheduledId"], True),
    EventType.TimerFired: lambda shim, e: shim.complete(e["TimerId"], failed=False),
    EventType.EventRaised: lambda shim, e: shim.raise_event(e.get("Name") or ""),
    EventType.ExecutionSuspended: lambda shim, _: setattr(shim, "suspended", True),
    EventType.ExecutionResumed: lambda shim, _: shim.resume(),
}.items()}
