"""End to end: what orchestrations do on a running host (events, timers, retries, sub-orchestrations,
continue-as-new, custom status, entities, durable HTTP, fan-out) and how bad orchestrator code fails
without disturbing anything else; on memory and sqlite."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from durable_support import (
    WEBHOOK,
    executions,
    history_of,
    operate,
    raise_event,
    start_id,
    status,
    unique,
    wait_status,
)
from support import HostProcess

from funcemu.durable.history import parse_time


def run(host: HostProcess, name: str, value: object = None, instance_id: str | None = None) -> dict[str, Any]:
    return wait_status(host, start_id(host, name, value, instance_id or unique(name)))


def when(text: str) -> datetime:
    return parse_time(text)  # history times have up to 7 fractional digits, which 3.10 cannot parse


def test_chain_through_the_http_starter(durable_host: HostProcess) -> None:
    reply = durable_host.call("POST", "/api/start/chain", ["Tokyo", "Paris"])

    assert reply.status == 202
    payload = reply.json()
    assert reply.headers["location"] == payload["statusQueryGetUri"]
    assert payload["rewindPostUri"].startswith(f"{durable_host.url}{WEBHOOK}/instances/{payload['id']}/rewind?")
    done = wait_status(durable_host, payload["id"])
    assert done["output"] == ["Hello Tokyo", "Hello Paris"]
    assert [row["FunctionName"] for row in history_of(done, "TaskCompleted")] == ["hello", "hello"]


def test_fan_out_of_500_activities_takes_far_fewer_episodes(durable_host: HostProcess) -> None:
    mark = len(durable_host.lines)

    done = run(durable_host, "fan_out", 500)

    assert done["runtimeStatus"] == "Completed" and done["output"] == sum(2 * i for i in range(500))
    assert len(history_of(done, "TaskCompleted")) == 500
    assert executions(durable_host, "double", mark) == 500
    episodes = executions(durable_host, "fan_out", mark)
    assert 2 <= episodes <= 100, f"{episodes} episodes for 500 completions"


def test_events_raised_before_the_orchestrator_waits_are_kept(durable_host: HostProcess) -> None:
    instance_id = start_id(durable_host, "timer_then_event", 0.3, unique("early"))

    assert raise_event(durable_host, instance_id, "Early", "first come").status == 202
    done = wait_status(durable_host, instance_id)

    assert done["runtimeStatus"] == "Completed" and done["output"] == '"first come"'
    raised = history_of(done, "EventRaised")[0]
    timer = history_of(done, "TimerFired")[0]
    assert raised["Name"] == "Early" and when(raised["Timestamp"]) < when(timer["Timestamp"])


def test_two_events_with_one_name_complete_successive_waits_in_order(durable_host: HostProcess) -> None:
    instance_id = start_id(durable_host, "two_events", None, unique("two"))

    for value in ("one", "two"):
        assert durable_host.call("POST", f"{WEBHOOK}/instances/{instance_id}/raiseEvent/E", value).status == 202

    assert wait_status(durable_host, instance_id)["output"] == ["one", "two"]


def test_a_timer_wins_against_an_event_that_never_comes(durable_host: HostProcess) -> None:
    done = run(durable_host, "wait_event", {"timeout": 0.2})

    assert done["output"] == "timed out"
    assert len(history_of(done, "TimerFired")) == 1 and not history_of(done, "EventRaised")


def test_an_event_that_comes_in_time_beats_the_timer(durable_host: HostProcess) -> None:
    instance_id = start_id(durable_host, "wait_event", {"timeout": 600}, unique("approve"))
    wait_status(durable_host, instance_id, "Running")

    durable_host.call("POST", f"{WEBHOOK}/instances/{instance_id}/raiseEvent/Approval", True)
    done = wait_status(durable_host, instance_id)

    assert done["output"] == {"approved": True}
    assert not history_of(done, "TimerFired")


def test_a_durable_timer_fires_no_earlier_than_asked(durable_host: HostProcess) -> None:
    done = run(durable_host, "short_timer", 0.4)

    created = history_of(done, "TimerCreated")[0]
    fired = history_of(done, "TimerFired")[0]
    assert when(fired["FireAt"]) == when(created["FireAt"])
    assert when(fired["Timestamp"]) >= when(created["FireAt"])
    assert when(done["output"]) >= when(created["FireAt"])


def test_retries_run_the_activity_again_until_it_succeeds(durable_host: HostProcess) -> None:
    done = run(durable_host, "retry")

    assert done["runtimeStatus"] == "Completed" and done["output"] == "ok after 3"
    assert len(history_of(done, "TaskFailed")) == 2
    assert len(history_of(done, "TimerFired")) == 2
    assert len(history_of(done, "TaskCompleted")) == 1


def test_retries_that_run_out_fail_with_the_last_failure(durable_host: HostProcess) -> None:
    done = run(durable_host, "retry_exhausted")

    assert done["runtimeStatus"] == "Failed"
    assert done["output"].startswith("Orchestrator function 'retry_exhausted' failed: Activity function 'boom' "
                                     "failed:  ValueError: always \n ")
    assert len(history_of(done, "TaskFailed")) == 2
    assert len(history_of(done, "TimerFired")) == 2  # one retry timer and the final one (§2.6)


def test_sub_orchestration_result_reaches_the_parent(durable_host: HostProcess) -> None:
    done = run(durable_host, "parent")

    assert done["output"] == {"child": ["Hello A", "Hello B"]}
    [row] = history_of(done, "SubOrchestrationInstanceCompleted")
    assert row["FunctionName"] == "chain" and row["Result"] == ["Hello A", "Hello B"]


def test_a_failed_sub_orchestration_fails_the_call_in_the_parent(durable_host: HostProcess) -> None:
    done = run(durable_host, "catches_child")
    child = wait_status(durable_host, f"{done['instanceId']}-child")

    reason = "Orchestrator function 'failing' failed: Activity function 'boom' failed:  ValueError: child broke \n "
    assert child["runtimeStatus"] == "Failed" and child["output"].startswith(reason)
    assert done["runtimeStatus"] == "Completed"
    assert done["output"].startswith(f"caught: {reason}")
    assert history_of(done, "SubOrchestrationInstanceFailed")[0]["FunctionName"] == "failing"


def test_continue_as_new_restarts_with_a_fresh_history(durable_host: HostProcess) -> None:
    done = run(durable_host, "counter_loop", 0)

    assert done["runtimeStatus"] == "Completed" and done["output"] == 3
    assert done["customStatus"] == {"n": 3}
    assert done["input"] == "3"
    assert len(history_of(done, "ExecutionStarted")) == 1
    assert not history_of(done, "TaskCompleted")


def test_custom_status_is_visible_while_running_and_after(durable_host: HostProcess) -> None:
    instance_id = start_id(durable_host, "status_then_wait", None, unique("custom"))

    running = wait_status(durable_host, instance_id, "Running")
    durable_host.call("POST", f"{WEBHOOK}/instances/{instance_id}/raiseEvent/Go", 42)
    done = wait_status(durable_host, instance_id)

    assert running["customStatus"] == {"stage": "waiting"}
    assert done["customStatus"] == {"stage": "done", "answer": 42} and done["output"] == 42
    assert run(durable_host, "progress", 3)["customStatus"] == {"step": 3, "of": 3}


def test_orchestrations_signal_and_call_entities(durable_host: HostProcess) -> None:
    key = unique("k")

    done = run(durable_host, "uses_entity", key)
    state = durable_host.call("GET", f"{WEBHOOK}/entities/counter/{key}")

    assert done["runtimeStatus"] == "Completed" and done["output"] == 5
    assert (state.status, state.json()) == (200, 5)


def test_an_entity_operation_that_raises_fails_the_call(durable_host: HostProcess) -> None:
    key = unique("err")

    done = run(durable_host, "entity_error", key)
    uses = run(durable_host, "uses_entity", key)

    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == "caught: unsupported operand type(s) for +=: 'int' and 'str'"
    assert uses["output"] == 5, "the entity still works after a failed operation"


def test_call_http_follows_202_location_polling_to_the_end(durable_host: HostProcess) -> None:
    token = uuid.uuid4().hex
    url = f"{durable_host.url}/api/resource/{token}"

    done = run(durable_host, "http_caller", url)

    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == {"statusCode": 200, "content": {"token": token, "polls": 3}}
    [row] = history_of(done, "TaskCompleted")
    assert row["FunctionName"] == "BuiltIn::HttpActivity"


# ---------------------------------------------------------------------------- bad orchestrator code

def test_an_orchestrator_that_raises_fails_with_its_message(durable_host: HostProcess) -> None:
    done = run(durable_host, "raising")

    assert done["runtimeStatus"] == "Failed"
    assert done["output"] == "Orchestrator function 'raising' failed: orchestrator went wrong"
    [completed] = history_of(done, "ExecutionCompleted")
    assert completed["OrchestrationStatus"] == "Failed"


def test_an_orchestrator_that_yields_a_non_task_fails_saying_so(durable_host: HostProcess) -> None:
    done = run(durable_host, "not_a_task")

    assert done["runtimeStatus"] == "Failed"
    assert done["output"].startswith("Orchestrator function 'not_a_task' failed: ")
    assert "yielded 42 (int), which is not a durable task" in done["output"]


def test_an_output_that_is_not_json_fails_saying_so(durable_host: HostProcess) -> None:
    done = run(durable_host, "bad_output")

    assert done["runtimeStatus"] == "Failed"
    assert done["output"].startswith("Orchestrator function 'bad_output' failed: ")
    assert "not JSON serializable" in done["output"]


def test_an_unknown_activity_fails_that_task_with_a_clear_reason(durable_host: HostProcess) -> None:
    done = run(durable_host, "missing_activity")

    assert done["runtimeStatus"] == "Completed"
    assert done["output"].startswith("caught: The function 'no_such_activity' doesn't exist, is disabled, or is "
                                     "not an activity function. Additional info: The following are the known "
                                     "activity functions: ")
    assert "'hello'" in done["output"] and "'double'" in done["output"]
    durable_host.wait_for_log(r"The function 'no_such_activity' doesn't exist")


def test_an_unknown_sub_orchestrator_fails_that_task_with_a_clear_reason(durable_host: HostProcess) -> None:
    done = run(durable_host, "missing_child")

    assert done["runtimeStatus"] == "Completed"
    assert done["output"].startswith("caught: The function 'no_such_orchestrator' doesn't exist, is disabled, or "
                                     "is not an orchestrator function. Additional info: The following are the "
                                     "known orchestrator functions: ")


def test_failures_do_not_disturb_other_instances_or_the_host(durable_host: HostProcess) -> None:
    bystander = start_id(durable_host, "wait_event", {}, unique("bystander"))
    wait_status(durable_host, bystander, "Running")
    broken = [start_id(durable_host, name, None, unique(name))
              for name in ("raising", "not_a_task", "bad_output", "missing_activity", "failing")]
    for instance_id in broken:
        wait_status(durable_host, instance_id)

    assert status(durable_host, bystander).json()["runtimeStatus"] == "Running"
    durable_host.call("POST", f"{WEBHOOK}/instances/{bystander}/raiseEvent/Approval", "still here")
    assert wait_status(durable_host, bystander)["output"] == {"approved": "still here"}
    assert run(durable_host, "chain", ["after"])["output"] == ["Hello after"]
    assert durable_host.proc is not None and durable_host.proc.poll() is None


def test_terminating_a_waiting_instance_cancels_its_timer(durable_host: HostProcess) -> None:
    # long enough that a loaded machine still terminates it before the timer is due
    instance_id = start_id(durable_host, "short_timer", 1.5, unique("terminated"))
    wait_status(durable_host, instance_id, "Running")

    assert operate(durable_host, instance_id, "terminate", "?reason=stop").status == 202
    done = wait_status(durable_host, instance_id)
    later = run(durable_host, "short_timer", 1.6)  # its timer fires after the terminated one was due

    assert done["runtimeStatus"] == "Terminated" and done["output"] == "stop"
    fire_at = when(history_of(done, "TimerCreated")[0]["FireAt"])
    assert when(history_of(later, "TimerFired")[0]["Timestamp"]) > fire_at
    final = status(durable_host, instance_id, "?showHistory=true").json()
    assert final["runtimeStatus"] == "Terminated" and final["lastUpdatedTime"] == done["lastUpdatedTime"]
    assert not history_of(final, "TimerFired")
    assert [row["EventType"] for row in final["historyEvents"]][-2:] == ["ExecutionTerminated",
                                                                       "ExecutionCompleted"]
