"""run_episode against the real Durable SDK: orchestrators are defined with df.DFApp, histories are
built with funcemu.durable.history, the way the engine builds them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import azure.durable_functions as df
import pytest

from funcemu.durable import replay
from funcemu.durable.history import (
    Event,
    EventType,
    event_raised,
    event_sent,
    execution_resumed,
    execution_started,
    execution_suspended,
    orchestrator_completed,
    orchestrator_started,
    sub_orchestration_completed,
    sub_orchestration_failed,
    task_completed,
    task_failed,
    task_scheduled,
    timer_created,
    timer_fired,
)
from funcemu.durable.orchestrator import Episode, run_episode

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
INSTANCE, EXECUTION = "inst-1", "exec-1"

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    a = yield context.call_activity("hello", "Tokyo")
    b = yield context.call_activity("hello", "Seattle")
    c = yield context.call_activity("hello", "London")
    return [a, b, c]


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    results = yield context.task_all([context.call_activity("square", n) for n in range(3)])
    return sum(results)


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    event = context.wait_for_external_event("Approval")
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return (yield context.call_activity("approve", event.result))
    return "timed out"


@app.orchestration_trigger(context_name="context")
def early_event(context: df.DurableOrchestrationContext):
    yield context.call_activity("prepare")
    return (yield context.wait_for_external_event("Go"))


@app.orchestration_trigger(context_name="context")
def waiter(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("Go"))


@app.orchestration_trigger(context_name="context")
def flaky(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    return (yield context.call_activity_with_retry("unstable", options, "x"))


@app.orchestration_trigger(context_name="context")
def gives_up(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=2)
    try:
        yield context.call_activity_with_retry("unstable", options)
    except Exception:
        return "gave up"
    return "succeeded"


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    a = yield context.call_sub_orchestrator("child", {"n": 1})
    b = yield context.call_sub_orchestrator("child", 2, instance_id="my-child")
    return [a, b]


@app.orchestration_trigger(context_name="context")
def parent_retry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=500, max_number_of_attempts=2)
    return (yield context.call_sub_orchestrator_with_retry("child", options, "in"))


@app.orchestration_trigger(context_name="context")
def counter_loop(context: df.DurableOrchestrationContext):
    n = context.get_input()
    yield context.call_activity("tick", n)
    if n < 2:
        context.continue_as_new(n + 1)
        return None
    return n


@app.orchestration_trigger(context_name="context")
def status_setter(context: df.DurableOrchestrationContext):
    context.set_custom_status(context.get_input())
    yield context.call_activity("noop")
    return None


@app.orchestration_trigger(context_name="context")
def status_then_raise(context: df.DurableOrchestrationContext):
    context.set_custom_status(context.get_input())
    if context.get_input():
        raise ValueError("kaboom")
    yield context.call_activity("noop")


@app.orchestration_trigger(context_name="context")
def boom(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "x")
    raise ValueError("kaboom")


@app.orchestration_trigger(context_name="context")
def unserializable(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "x")
    return {1, 2}


@app.orchestration_trigger(context_name="context")
def bad_yield(context: df.DurableOrchestrationContext):
    yield 5


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(days=7))
    return "woke"


@app.orchestration_trigger(context_name="context")
def fetcher(context: df.DurableOrchestrationContext):
    response = yield context.call_http("GET", "https://example.com/api", headers={"X-A": "1"})
    return response["statusCode"]


@app.orchestration_trigger(context_name="context")
def entities(context: df.DurableOrchestrationContext):
    counter = df.EntityId("Counter", "k1")
    context.signal_entity(counter, "add", 5)
    return (yield context.call_entity(counter, "get"))


@app.orchestration_trigger(context_name="context")
def fan_catch(context: df.DurableOrchestrationContext):
    try:
        yield context.task_all([context.call_activity("fails"), context.call_activity("slow")])
    except Exception:
        pass
    return (yield context.call_activity("after"))


@app.orchestration_trigger(context_name="context")
def breaks_on_replay(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("hello", "a")
    if context.is_replaying:
        raise KeyError("oops a bug")
    second = yield context.call_activity("hello", "b")
    return [first, second]


HANDLERS = {fn.get_function_name(): fn.get_user_function() for fn in app.get_functions()}


class Run:
    """Drives one execution the way the engine does: each episode's new events, then its decisions,
    then OrchestratorCompleted, are appended to the history."""

    def __init__(self, name: str, input: str | None = None, handler: Any = None) -> None:
        self.name, self.input = name, input
        self.handler = handler or HANDLERS[name]
        self.past: list[Event] = []

    def start(self, at: datetime = T0) -> Episode:
        return self.step(execution_started(at, self.name, INSTANCE, EXECUTION, self.input), at=at)

    def step(self, *events: Event, at: datetime | None = None) -> Episode:
        now = at or T0 + timedelta(seconds=len(self.past))
        new = [orchestrator_started(now), *events]
        episode = run_episode(self.handler, name=self.name, instance_id=INSTANCE, past=self.past, new=new,
                              now=now)
        self.past = self.past + new + [d.event for d in episode.decisions] + [orchestrator_completed(now)]
        return episode

    def types(self) -> list[tuple[str, Any]]:
        """(event type, id) of the history's scheduling and completion events."""
        out = []
        for event in self.past:
            kind = EventType(event["EventType"])
            ref = event.get("TaskScheduledId", event.get("TimerId", event["EventId"]))
            if kind not in (EventType.OrchestratorStarted, EventType.OrchestratorCompleted,
                            EventType.ExecutionStarted):
                out.append((kind.name, ref))
        return out


def client_input(value: Any) -> str:
    """ExecutionStarted.Input for a Python-client start: a JSON string holding JSON text (§0)."""
    return json.dumps(json.dumps(value))


def ids(episode: Episode) -> list[tuple[str, int, str | None]]:
    return [(d.kind, d.event["EventId"], d.name) for d in episode.decisions]


# -- chaining, fan-out ---------------------------------------------------------------------------

def test_first_episode_of_a_chain_schedules_the_first_activity() -> None:
    episode = Run("chain").start()
    assert ids(episode) == [("activity", 0, "hello")]
    decision = episode.decisions[0]
    assert decision.input == '"Tokyo"'
    assert decision.event == task_scheduled(T0, 0, "hello", '"Tokyo"')
    assert not episode.done and episode.failure is None and episode.output is None


def test_chain_completes_step_by_step() -> None:
    run = Run("chain")
    run.start()
    assert ids(run.step(task_completed(T0, 0, '"Hello Tokyo"'))) == [("activity", 1, "hello")]
    second = run.step(task_completed(T0, 1, '"Hello Seattle"'))
    assert ids(second) == [("activity", 2, "hello")] and second.decisions[0].input == '"London"'
    last = run.step(task_completed(T0, 2, '"Hello London"'))
    assert last.done and last.decisions == []
    assert last.output == '["Hello Tokyo","Hello Seattle","Hello London"]'
    assert last.completion_id == 3


def test_fan_out_schedules_all_ids_in_one_episode() -> None:
    run = Run("fan_out")
    first = run.start()
    assert ids(first) == [("activity", 0, "square"), ("activity", 1, "square"), ("activity", 2, "square")]
    assert [d.input for d in first.decisions] == ["0", "1", "2"]
    assert not run.step(task_completed(T0, 2, "4"), task_completed(T0, 0, "0")).done
    last = run.step(task_completed(T0, 1, "1"))
    assert last.done and last.output == "5" and last.completion_id == 3


def test_when_all_waits_for_every_child_before_the_next_action() -> None:
    """Python goes on after the first failure; .NET's Task.WhenAll waits for the slow child."""
    run = Run("fan_catch")
    assert ids(run.start()) == [("activity", 0, "fails"), ("activity", 1, "slow")]
    failed = run.step(task_failed(T0, 0, "Activity function 'fails' failed:  ValueError: x", "{}"))
    assert failed.decisions == [] and not failed.done
    assert ids(run.step(task_completed(T0, 1, '"slow"'))) == [("activity", 2, "after")]
    last = run.step(task_completed(T0, 2, '"done"'))
    assert last.done and last.output == '"done"'


# -- events and timers -----------------------------------------------------------------------------

def test_task_any_event_and_timer_gives_the_timer_id_0() -> None:
    run = Run("approval")
    first = run.start()
    assert ids(first) == [("timer", 0, None)]
    assert first.decisions[0].fire_at == T0 + timedelta(hours=1) and not first.decisions[0].canceled
    approved = run.step(event_raised(T0, "Approval", '"yes"'))
    assert ids(approved) == [("activity", 1, "approve")] and approved.decisions[0].input == '"yes"'
    assert approved.canceled_timer_ids == [0]
    last = run.step(task_completed(T0, 1, '"approved"'))
    assert last.done and last.output == '"approved"'


def test_task_any_timer_wins() -> None:
    run = Run("approval")
    run.start()
    fire_at = T0 + timedelta(hours=1)
    last = run.step(timer_fired(fire_at, 0, fire_at), at=fire_at)
    assert last.done and last.output == '"timed out"' and last.completion_id == 1


@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")
def test_external_event_raised_before_the_wait_is_buffered() -> None:
    run = Run("early_event")
    assert ids(run.start()) == [("activity", 0, "prepare")]
    early = run.step(event_raised(T0, "Go", '"now"'))
    assert early.decisions == [] and not early.done
    last = run.step(task_completed(T0, 0, "null"))
    assert last.done and last.output == '"now"'


def test_events_raised_while_suspended_wait_for_resume() -> None:
    run = Run("waiter")
    run.start()
    suspended = run.step(execution_suspended(T0, "pause"), event_raised(T0, "Go", "1"))
    assert not suspended.done and suspended.output is None
    resumed = run.step(execution_resumed(T0, "go on"))
    assert resumed.done and resumed.output == "1"


def test_long_timer_is_created_in_pieces() -> None:
    run = Run("sleeper")
    first = run.start()
    assert ids(first) == [("timer", 0, None)] and first.decisions[0].fire_at == T0 + timedelta(days=3)
    piece = T0 + timedelta(days=3)
    second = run.step(timer_fired(piece, 0, piece), at=piece)
    assert ids(second) == [("timer", 1, None)] and second.decisions[0].fire_at == T0 + timedelta(days=7)
    end = T0 + timedelta(days=7)
    last = run.step(timer_fired(end, 1, end), at=end)
    assert last.done and last.output == '"woke"' and last.completion_id == 2


# -- retries -----------------------------------------------------------------------------------------

def failed(task_id: int) -> Event:
    return task_failed(T0, task_id, "Activity function 'unstable' failed:  ValueError: no", '{"Message":"no"}')


def test_retry_ids_and_timers_until_the_third_attempt_succeeds() -> None:
    run = Run("flaky")
    assert ids(run.start()) == [("activity", 0, "unstable")]
    t1 = T0 + timedelta(minutes=1)
    retry = run.step(failed(0), at=t1)
    assert ids(retry) == [("timer", 1, None)] and retry.decisions[0].fire_at == t1 + timedelta(seconds=1)
    fired = t1 + timedelta(seconds=1)
    second = run.step(timer_fired(fired, 1, fired), at=fired)
    assert ids(second) == [("activity", 2, "unstable")] and second.decisions[0].input == '"x"'
    t3 = T0 + timedelta(minutes=2)
    assert ids(run.step(failed(2), at=t3)) == [("timer", 3, None)]
    third = run.step(timer_fired(t3, 3, t3), at=t3 + timedelta(seconds=1))
    assert ids(third) == [("activity", 4, "unstable")]
    last = run.step(task_completed(T0, 4, '"ok"'), at=t3 + timedelta(seconds=2))
    assert last.done and last.output == '"ok"' and last.completion_id == 5
    assert run.types() == [
        ("TaskScheduled", 0), ("TaskFailed", 0), ("TimerCreated", 1), ("TimerFired", 1), ("TaskScheduled", 2),
        ("TaskFailed", 2), ("TimerCreated", 3), ("TimerFired", 3), ("TaskScheduled", 4), ("TaskCompleted", 4)]


def test_retry_ends_with_a_dummy_timer_firing_at_once() -> None:
    run = Run("gives_up")
    run.start()
    t1 = T0 + timedelta(seconds=10)
    run.step(failed(0), at=t1)
    fired = t1 + timedelta(seconds=1)
    assert ids(run.step(timer_fired(fired, 1, fired), at=fired)) == [("activity", 2, "unstable")]
    t2 = T0 + timedelta(seconds=20)
    final = run.step(failed(2), at=t2)
    assert ids(final) == [("timer", 3, None)] and final.decisions[0].fire_at == t2
    last = run.step(timer_fired(t2, 3, t2), at=t2)
    assert last.done and last.output == '"gave up"' and last.completion_id == 4


def test_retry_policy_delay() -> None:
    policy = replay.RetryPolicy.from_json({
        "firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 5, "backoffCoefficient": 2,
        "maxRetryIntervalInMilliseconds": 5000, "retryTimeoutInMilliseconds": 60000})
    assert [policy.delay(n, T0, T0).total_seconds() for n in range(4)] == [1, 2, 4, 5]
    assert policy.delay(0, T0, T0 + timedelta(minutes=1)) == timedelta(0)


def test_recorded_history_replays_to_done() -> None:
    """The §2.6 history, written out by hand, replays to the activity's result."""
    def at(n: int) -> datetime:
        return T0 + timedelta(seconds=n)

    past = [
        orchestrator_started(at(0)), execution_started(at(0), "flaky", INSTANCE, EXECUTION, None),
        task_scheduled(at(0), 0, "unstable", '"x"'), orchestrator_completed(at(0)),
        orchestrator_started(at(1)), failed(0), timer_created(at(1), 1, at(2)), orchestrator_completed(at(1)),
        orchestrator_started(at(2)), timer_fired(at(2), 1, at(2)), task_scheduled(at(2), 2, "unstable", '"x"'),
        orchestrator_completed(at(2)),
        orchestrator_started(at(3)), failed(2), timer_created(at(3), 3, at(4)), orchestrator_completed(at(3)),
        orchestrator_started(at(4)), timer_fired(at(4), 3, at(4)), task_scheduled(at(4), 4, "unstable", '"x"'),
        orchestrator_completed(at(4)),
    ]
    episode = run_episode(HANDLERS["flaky"], name="flaky", instance_id=INSTANCE, past=past,
                          new=[orchestrator_started(at(5)), task_completed(at(5), 4, '"fine"')], now=at(5))
    assert episode.done and episode.failure is None and episode.decisions == []
    assert episode.output == '"fine"' and episode.completion_id == 5


# -- sub-orchestrations, continue-as-new, custom status ------------------------------------------

def test_sub_orchestration_default_instance_id() -> None:
    run = Run("parent")
    first = run.start()
    assert ids(first) == [("suborchestration", 0, "child")]
    decision = first.decisions[0]
    assert decision.instance_id == f"{EXECUTION}:0"
    assert decision.input == json.dumps('{"n": 1}')
    assert decision.event["InstanceId"] == f"{EXECUTION}:0" and decision.event["Input"] == decision.input
    second = run.step(sub_orchestration_completed(T0, 0, '"a"'))
    assert ids(second) == [("suborchestration", 1, "child")] and second.decisions[0].instance_id == "my-child"
    last = run.step(sub_orchestration_completed(T0, 1, '"b"'))
    assert last.done and last.output == '["a","b"]'


def test_sub_orchestration_retry_gets_a_new_default_id_per_attempt() -> None:
    run = Run("parent_retry")
    first = run.start()
    assert ids(first) == [("suborchestration", 0, "child")] and first.decisions[0].instance_id == f"{EXECUTION}:0"
    reason = "Orchestrator function 'child' failed: no"
    retry = run.step(sub_orchestration_failed(T0, 0, reason, ""), at=T0)
    assert ids(retry) == [("timer", 1, None)] and retry.decisions[0].fire_at == T0 + timedelta(milliseconds=500)
    fired = T0 + timedelta(milliseconds=500)
    second = run.step(timer_fired(fired, 1, fired), at=fired)
    assert ids(second) == [("suborchestration", 2, "child")] and second.decisions[0].instance_id == f"{EXECUTION}:2"
    last = run.step(sub_orchestration_completed(fired, 2, '"ok"'), at=fired)
    assert last.done and last.output == '"ok"' and last.completion_id == 3


def test_continue_as_new_feeds_the_next_execution() -> None:
    run = Run("counter_loop", client_input(0))
    run.start()
    episode = run.step(task_completed(T0, 0, "null"))
    assert episode.done and episode.output is None and episode.failure is None
    assert episode.continue_as_new == json.dumps("1") and episode.completion_id == 1
    nxt = Run("counter_loop", episode.continue_as_new)
    assert ids(nxt.start()) == [("activity", 0, "tick")] and nxt.past[2]["Input"] == json.dumps(["1"])
    assert nxt.step(task_completed(T0, 0, "null")).continue_as_new == json.dumps("2")
    final = Run("counter_loop", json.dumps("2"))
    final.start()
    last = final.step(task_completed(T0, 0, "null"))
    assert last.done and last.continue_as_new is None and last.output == "2"


@pytest.mark.parametrize(("value", "expected"), [
    ({"stage": "one"}, '{"stage":"one"}'), ("working", '"working"'), (0, None), ("", None), ([], None)])
def test_custom_status_is_kept_only_when_truthy(value: Any, expected: str | None) -> None:
    assert Run("status_setter", client_input(value)).start().custom_status == expected


TOO_BIG = ("The UTF-16 size of the JSON-serialized payload must not exceed 16 KB. "
           "The current payload size is {} KB.")


@pytest.mark.parametrize(("value", "kb"), [
    ("x" * 8701, None),  # 8703 UTF-16 units with the quotes: 17406 bytes, 16 KB once truncated
    ("x" * 8702, 17),  # 17408 bytes
    ("\U0001F600" * 4351, 17),  # 2 UTF-16 units each (UTF-8 would count 17406 bytes: 16 KB)
    ({"log": "y" * 20000}, 39),
])
def test_custom_status_over_16_kb_of_utf16_fails_before_the_actions(value: Any, kb: int | None) -> None:
    episode = Run("status_setter", client_input(value)).start()
    if kb is None:
        assert episode.failure is None and not episode.done
        assert episode.custom_status == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        assert ids(episode) == [("activity", 0, "noop")]
        return
    assert episode.done and episode.failure is not None and episode.output is None
    assert episode.failure.reason == f"Orchestrator function 'status_setter' failed: {TOO_BIG.format(kb)}"
    assert json.loads(episode.failure.details)["ClassName"] == "System.ArgumentException"
    assert episode.decisions == [] and episode.custom_status is None


def test_custom_status_too_big_with_an_orchestrator_error_fails_with_the_bare_message() -> None:
    """The ArgumentException escapes the shim's failure handling; DTFx fails with its message alone."""
    big = Run("status_then_raise", client_input("z" * 9000)).start()
    small = Run("status_then_raise", client_input("small")).start()

    assert big.done and big.failure is not None and big.failure.reason == TOO_BIG.format(17)
    assert big.failure.details.startswith("Unhandled exception while executing orchestration: "
                                          f"System.ArgumentException: {TOO_BIG.format(17)}")
    assert small.failure is not None
    assert small.failure.reason == "Orchestrator function 'status_then_raise' failed: kaboom"


# -- failures -----------------------------------------------------------------------------------------

def test_orchestrator_exception_fails_with_its_message() -> None:
    run = Run("boom")
    run.start()
    episode = run.step(task_completed(T0, 0, '"hi"'))
    assert episode.done and episode.output is None
    assert episode.failure is not None
    assert episode.failure.reason == "Orchestrator function 'boom' failed: kaboom"
    assert episode.failure.details.startswith("Message: kaboom, StackTrace: ")
    assert 'raise ValueError("kaboom")' in episode.failure.details
    assert episode.completion_id == 1


def test_unserializable_output_is_a_failure() -> None:
    run = Run("unserializable")
    run.start()
    episode = run.step(task_completed(T0, 0, '"hi"'))
    assert episode.done and episode.failure is not None and episode.output is None
    assert episode.failure.reason == ("Orchestrator function 'unserializable' failed: "
                                      "Object of type set is not JSON serializable")


def test_yielding_a_non_task_is_a_failure_that_says_so() -> None:
    episode = Run("bad_yield").start()
    assert episode.done and episode.failure is not None
    assert "yielded 5 (int), which is not a durable task" in episode.failure.reason
    assert episode.failure.reason.startswith("Orchestrator function 'bad_yield' failed: ")


def test_unparsable_handler_output_is_a_failure() -> None:
    episode = Run("broken", handler=lambda _: "not json").start()
    assert episode.done and episode.failure is not None
    assert episode.failure.reason == ("Orchestrator function 'broken' failed: "
                                      "Out of proc orchestrators must return a valid JSON schema")


def test_exception_without_state_is_a_failure() -> None:
    def handler(_: str) -> str:
        raise RuntimeError("nope")

    episode = Run("raw", handler=handler).start()
    assert episode.done and episode.failure is not None
    assert episode.failure.reason == "Orchestrator function 'raw' failed: RuntimeError: nope"


def test_fire_and_forget_actions_apply_even_on_failure() -> None:
    state = {"isDone": False, "schemaVersion": 2, "error": "bad", "actions": [[
        {"actionType": 9, "instanceId": "@counter@k", "operation": "reset", "input": "null"}]]}
    document = json.dumps(state)

    def handler(_: str) -> str:
        raise Exception(f"bad\n\n$OutOfProcData$:{document}")

    episode = Run("signals", handler=handler).start()
    assert episode.failure is not None and episode.failure.reason == "Orchestrator function 'signals' failed: bad"
    assert ids(episode) == [("event_sent", 0, "reset")] and episode.completion_id == 1


def test_non_determinism_names_the_orchestrator_the_id_and_both_sides() -> None:
    past = [orchestrator_started(T0), execution_started(T0, "sleeper", INSTANCE, EXECUTION, None),
            task_scheduled(T0, 0, "hello", '"x"'), orchestrator_completed(T0)]
    episode = run_episode(HANDLERS["sleeper"], name="sleeper", instance_id=INSTANCE, past=past,
                          new=[orchestrator_started(T0), task_completed(T0, 0, '"y"')], now=T0)
    assert episode.done and episode.decisions == [] and episode.failure is not None
    assert episode.failure.reason.startswith(
        "Non-Deterministic workflow detected: sleeper at sequence id 0: "
        "history has TaskScheduled 'hello' but the code now scheduled CreateTimer")


def test_non_determinism_wrong_activity_name() -> None:
    past = [orchestrator_started(T0), execution_started(T0, "chain", INSTANCE, EXECUTION, None),
            task_scheduled(T0, 0, "goodbye", '"x"'), orchestrator_completed(T0)]
    episode = run_episode(HANDLERS["chain"], name="chain", instance_id=INSTANCE, past=past,
                          new=[orchestrator_started(T0), task_completed(T0, 0, '"y"')], now=T0)
    assert episode.failure is not None
    assert ("chain at sequence id 0: history has TaskScheduled 'goodbye' but the code now scheduled "
            "CallActivity 'hello'") in episode.failure.reason


def test_an_exception_that_stops_the_replay_early_is_named_beside_the_non_determinism() -> None:
    run = Run("breaks_on_replay")
    run.start()
    run.step(task_completed(T0, 0, '"A"'))  # not replaying after the first result: schedules id 1

    episode = run.step(task_completed(T0, 1, '"B"'))  # replaying: raises before it schedules id 1

    assert episode.failure is not None
    reason = episode.failure.reason
    assert reason.startswith("Non-Deterministic workflow detected: breaks_on_replay at sequence id 1: history has "
                             "TaskScheduled 'hello' but the code now scheduled nothing with that id (yet).")
    assert reason.endswith("While replaying, the orchestrator raised KeyError: 'oops a bug', which stopped it "
                           "before it scheduled that.")
    assert "raise KeyError" in episode.failure.details  # the stack of the user's exception


def test_a_different_call_at_an_id_is_not_blamed_on_an_exception() -> None:
    past = [orchestrator_started(T0), execution_started(T0, "chain", INSTANCE, EXECUTION, None),
            task_scheduled(T0, 0, "goodbye", '"x"'), orchestrator_completed(T0)]

    def raising(document: str) -> str:
        state = {"isDone": False, "actions": [[{"actionType": 0, "functionName": "hello", "input": '"x"'}]],
                 "output": None, "error": "ValueError: late", "customStatus": None, "schemaVersion": 0}
        raise Exception(f"late\n\n$OutOfProcData$:{json.dumps(state)}")

    episode = run_episode(raising, name="chain", instance_id=INSTANCE, past=past,
                          new=[orchestrator_started(T0), task_completed(T0, 0, '"y"')], now=T0)

    assert episode.failure is not None and "While replaying" not in episode.failure.reason


def test_nondeterminism_check_accepts_names_in_any_case() -> None:
    op = replay.Op(3, "activity", "CallActivity 'Hello'", name="Hello")
    assert replay.nondeterminism("o", task_scheduled(T0, 3, "hello", None), op) is None
    message = replay.nondeterminism("o", timer_created(T0, 3, T0), None)
    assert message is not None and "history has TimerCreated but the code now scheduled nothing" in message


# -- call_http, entities, V1 layout --------------------------------------------------------------------

def test_call_http_runs_as_the_builtin_http_activity() -> None:
    run = Run("fetcher")
    first = run.start()
    assert ids(first) == [("activity", 0, "BuiltIn::HttpActivity")]
    request = first.decisions[0].request
    assert request is not None and request["method"] == "GET" and request["uri"] == "https://example.com/api"
    assert request["headers"] == {"X-A": "1"} and json.loads(first.decisions[0].input or "") == request
    response = '{"statusCode":200,"headers":{},"content":"ok"}'
    last = run.step(task_completed(T0, 0, response))
    assert last.done and last.output == "200"


def test_call_entity_and_signal_entity_send_request_messages() -> None:
    run = Run("entities")
    first = run.start()
    assert ids(first) == [("event_sent", 0, "add"), ("event_sent", 1, "get")]
    signal, call = first.decisions
    assert signal.instance_id == call.instance_id == "@counter@k1"
    assert signal.event["Name"] == call.event["Name"] == "op"
    assert signal.request is not None and call.request is not None
    assert signal.request["signal"] is True and signal.request["input"] == json.dumps("5")
    assert "signal" not in call.request and call.request["op"] == "get"
    assert call.request["parent"] == INSTANCE and call.request["parentExecution"] == EXECUTION
    assert json.loads(call.event["Input"]) == call.request and call.request["id"] != signal.request["id"]
    answer = run.step(event_raised(T0, call.request["id"], json.dumps({"result": "5"})))
    assert answer.done and answer.output == "5" and answer.decisions == []
    assert answer.completion_id == 2


def test_entity_request_id_comes_from_history_on_replay() -> None:
    request = {"op": "get", "id": "8d1c6a34-0000-4000-8000-000000000001", "parent": INSTANCE}
    past = [orchestrator_started(T0), execution_started(T0, "entities", INSTANCE, EXECUTION, None),
            event_sent(T0, 0, "@counter@k1", "op", json.dumps({"op": "add", "signal": True, "id": "x"})),
            event_sent(T0, 1, "@counter@k1", "op", json.dumps(request)), orchestrator_completed(T0)]
    new = [orchestrator_started(T0), event_raised(T0, request["id"], '{"result":"7"}')]
    episode = run_episode(HANDLERS["entities"], name="entities", instance_id=INSTANCE, past=past, new=new,
                          now=T0)
    assert episode.done and episode.output == "7"


def test_v1_layout_waits_per_action_set() -> None:
    state = {"isDone": False, "actions": [
        [{"actionType": 0, "functionName": "a", "input": "1"}],
        [{"actionType": 0, "functionName": "b", "input": "2"}, {"actionType": 5, "fireAt": "2024-01-02T00:00:00.000000Z", "isCanceled": False}]]}
    past = [orchestrator_started(T0), execution_started(T0, "v1", INSTANCE, EXECUTION, None),
            task_scheduled(T0, 0, "a", "1"), orchestrator_completed(T0)]
    episode = run_episode(lambda _: json.dumps(state), name="v1", instance_id=INSTANCE, past=past,
                          new=[orchestrator_started(T0), task_completed(T0, 0, "1")], now=T0)
    assert ids(episode) == [("activity", 1, "b"), ("timer", 2, None)]
    assert episode.decisions[1].fire_at == datetime(2024, 1, 2, tzinfo=timezone.utc)


def test_context_document_follows_the_host() -> None:
    seen: list[dict[str, Any]] = []

    def handler(document: str) -> str:
        seen.append(json.loads(document))
        return json.dumps({"isDone": False, "schemaVersion": 2, "actions": [[]]})

    run = Run("doc", client_input({"x": 1}), handler=handler)
    run.start()
    run.step(event_raised(T0, "E", "1"))
    document = seen[0]
    assert document["input"] == '{"x": 1}' and document["instanceId"] == INSTANCE
    assert document["upperSchemaVersion"] == 1 and document["upperSchemaVersionNew"] == 2
    assert document["longRunningTimerIntervalDuration"] == "3.00:00:00"
    assert document["maximumShortTimerDuration"] == "6.00:00:00"
    assert document["isReplaying"] is False and document["parentInstanceId"] is None
    assert [e["EventType"] for e in document["history"]] == [EventType.OrchestratorStarted,
                                                              EventType.ExecutionStarted]
    replayed = seen[1]
    assert replayed["isReplaying"] is True and replayed["input"] == '{"x": 1}'
    flags = [(e["EventType"], e["IsPlayed"]) for e in replayed["history"]]
    assert flags == [(EventType.OrchestratorStarted, False), (EventType.ExecutionStarted, True),
                     (EventType.OrchestratorCompleted, True), (EventType.OrchestratorStarted, False),
                     (EventType.EventRaised, False)]
