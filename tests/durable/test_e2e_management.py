"""End to end: every management route of the Durable webhook (durable-protocol.md §6.2) with each of its
status codes, payload shapes and error texts, over real HTTP against a running host, on memory and sqlite."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from durable_support import (
    WEBHOOK,
    app_functions,
    history_of,
    operate,
    raise_event,
    start,
    start_id,
    status,
    unique,
    wait_status,
    wait_until,
)
from support import HostProcess, Reply

CHECK_STATUS_KEYS = ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri",
                     "restartPostUri", "suspendPostUri", "resumePostUri"]
STATUS_KEYS = ["name", "instanceId", "runtimeStatus", "input", "customStatus", "output", "createdTime",
               "lastUpdatedTime"]
ARGUMENT_ERROR = "One or more of the arguments submitted is incorrect"
JSON_UTF8 = "application/json; charset=utf-8"
STATUS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def waiting(host: HostProcess, prefix: str = "waiting") -> str:
    """A Running instance of `wait_event` (it waits an hour for "Approval")."""
    instance_id = start_id(host, "wait_event", {}, unique(prefix))
    wait_status(host, instance_id, "Running")
    return instance_id


def finished(host: HostProcess, name: str = "chain", value: object = None, prefix: str = "done"
             ) -> dict[str, Any]:
    return wait_status(host, start_id(host, name, value, unique(prefix)))


def assert_argument_error(reply: Reply, message: str) -> None:
    assert reply.status == 400, reply.text
    body = reply.json()
    assert body["Message"] == ARGUMENT_ERROR
    assert body["ExceptionMessage"] == message
    assert body["ExceptionType"] == "System.ArgumentException"


# ---------------------------------------------------------------------------- POST orchestrators/{fn}[/{id}]

def test_start_answers_202_with_the_check_status_payload(durable_host: HostProcess) -> None:
    reply = start(durable_host, "chain", ["Oslo", "Rome"])

    assert reply.status == 202
    assert reply.headers["content-type"] == JSON_UTF8
    payload = reply.json()
    assert list(payload) == CHECK_STATUS_KEYS
    instance_id = payload["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", instance_id)
    base = f"{durable_host.url}{WEBHOOK}/instances/{instance_id}"
    # the system key rides along even though auth is off (the local host creates it and does not check it)
    code = parse_qs(urlsplit(payload["statusQueryGetUri"]).query)["code"][0]
    suffix = f"taskHub=EngineTests&connection=Storage&code={code}"
    assert len(code) >= 40
    assert payload == {
        "id": instance_id,
        "statusQueryGetUri": f"{base}?{suffix}",
        "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{suffix}",
        "terminatePostUri": f"{base}/terminate?reason={{text}}&{suffix}",
        "purgeHistoryDeleteUri": f"{base}?{suffix}",
        "restartPostUri": f"{base}/restart?{suffix}",
        "suspendPostUri": f"{base}/suspend?reason={{text}}&{suffix}",
        "resumePostUri": f"{base}/resume?reason={{text}}&{suffix}",
    }
    assert reply.headers["location"] == payload["statusQueryGetUri"]
    assert reply.headers["retry-after"] == "10"
    assert wait_status(durable_host, instance_id)["output"] == ["Hello Oslo", "Hello Rome"]


def test_start_with_an_id_uses_it_and_replaces_a_finished_instance(durable_host: HostProcess) -> None:
    instance_id = unique("mine")
    first = wait_status(durable_host, start_id(durable_host, "chain", ["A"], instance_id))
    assert first["instanceId"] == instance_id and first["output"] == ["Hello A"]

    assert start_id(durable_host, "chain", ["B"], instance_id) == instance_id
    second = wait_status(durable_host, instance_id)

    assert second["output"] == ["Hello B"]
    assert second["input"] == '["B"]'
    assert len(history_of(second, "ExecutionStarted")) == 1


def test_start_with_the_id_of_a_running_instance_replaces_it(durable_host: HostProcess) -> None:
    instance_id = start_id(durable_host, "short_timer", 0.3, unique("replaced"))
    wait_status(durable_host, instance_id, "Running")

    assert start_id(durable_host, "chain", ["new"], instance_id) == instance_id
    done = wait_status(durable_host, instance_id)
    wait_status(durable_host, start_id(durable_host, "short_timer", 0.4, unique("later")))  # past the old timer

    final = status(durable_host, instance_id, "?showHistory=true").json()
    assert done["name"] == "chain" and done["output"] == ["Hello new"]
    assert final["runtimeStatus"] == "Completed" and final["lastUpdatedTime"] == done["lastUpdatedTime"]
    assert not history_of(final, "TimerFired") and len(history_of(final, "ExecutionStarted")) == 1


def test_start_of_an_unknown_orchestrator_is_400_listing_the_known_ones(durable_host: HostProcess) -> None:
    reply = start(durable_host, "no_such_orchestrator", [1])

    assert reply.status == 400
    body = reply.json()
    assert list(body) == ["Message", "ExceptionMessage", "ExceptionType", "StackTrace"]
    assert body["Message"] == ARGUMENT_ERROR
    assert body["ExceptionType"] == "System.ArgumentException"
    head = ("The function 'no_such_orchestrator' doesn't exist, is disabled, or is not an orchestrator function. "
            "Additional info: The following are the known orchestrator functions: ")
    message = body["ExceptionMessage"]
    assert message.startswith(head) and message.endswith(".")
    assert set(re.findall(r"'([^']+)'", message[len(head):])) == app_functions("orchestration_trigger")


def test_start_with_a_malformed_json_body_is_400(durable_host: HostProcess) -> None:
    reply = durable_host.call("POST", f"{WEBHOOK}/orchestrators/chain", raw=b'{"cities": [')

    assert reply.status == 400
    assert reply.json()["Message"] == "Invalid JSON content"


@pytest.mark.parametrize(("instance_id", "message"), [
    ("@entity", "instanceId (Parameter 'Orchestration instance ids must not start with @.')"),
    ("a?b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control "
            "characters.')"),
    ("a#b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control "
            "characters.')"),
    ("a\\b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control "
             "characters.')"),
    ("a\x01b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control "
               "characters.')"),
    ("x" * 257, "Instance ID lengths must not exceed 256 characters."),
], ids=["at", "question", "hash", "backslash", "control", "too-long"])
def test_start_with_an_invalid_instance_id_is_400(durable_host: HostProcess, instance_id: str,
                                                  message: str) -> None:
    reply = start(durable_host, "chain", ["A"], instance_id)

    assert_argument_error(reply, message)
    assert status(durable_host, instance_id).status in (400, 404)


def test_start_and_wait_answers_200_with_the_output(durable_host: HostProcess) -> None:
    reply = start(durable_host, "chain", ["Lima"], query="?timeout=10&pollingInterval=1")

    assert reply.status == 200
    assert reply.json() == ["Hello Lima"]


def test_start_and_wait_for_a_failure_answers_with_its_status(durable_host: HostProcess) -> None:
    reply = start(durable_host, "failing", "no luck", query="?timeout=10&pollingInterval=1")

    assert reply.status == 200
    body = reply.json()
    assert list(body) == STATUS_KEYS
    assert body["runtimeStatus"] == "Failed"
    assert body["output"].startswith("Orchestrator function 'failing' failed: Activity function 'boom' failed:  "
                                     "ValueError: no luck \n ")


def test_start_and_wait_past_the_timeout_answers_202_check_status(durable_host: HostProcess) -> None:
    reply = start(durable_host, "wait_event", {}, query="?timeout=0.2&pollingInterval=0.1")

    assert reply.status == 202
    assert list(reply.json()) == CHECK_STATUS_KEYS
    assert operate(durable_host, reply.json()["id"], "terminate").status == 202


def test_orchestrators_route_answers_404_to_other_methods(durable_host: HostProcess) -> None:
    reply = durable_host.call("GET", f"{WEBHOOK}/orchestrators/chain")

    assert (reply.status, reply.body) == (404, b"")


# ---------------------------------------------------------------------------- GET instances/{id}

def test_status_of_an_unknown_instance_is_404_with_an_empty_body(durable_host: HostProcess) -> None:
    reply = status(durable_host, "never-started")

    assert (reply.status, reply.body) == (404, b"")


def test_status_of_a_running_instance_is_202_with_location(durable_host: HostProcess) -> None:
    instance_id = waiting(durable_host)
    path = f"{WEBHOOK}/instances/{instance_id}?showInput=true"

    reply = durable_host.call("GET", path)

    assert reply.status == 202
    assert reply.headers["location"] == durable_host.url + path
    assert reply.headers["retry-after"] == "5"
    body = reply.json()
    assert list(body) == STATUS_KEYS
    assert body["runtimeStatus"] == "Running" and body["instanceId"] == instance_id
    assert body["name"] == "wait_event" and body["input"] == "{}"
    assert STATUS_TIME.match(body["createdTime"]) and STATUS_TIME.match(body["lastUpdatedTime"])
    operate(durable_host, instance_id, "terminate")


def test_status_of_a_completed_instance_is_200_with_history_on_request(durable_host: HostProcess) -> None:
    instance_id = finished(durable_host, "chain", ["Kyiv"])["instanceId"]

    plain = status(durable_host, instance_id)
    no_input = status(durable_host, instance_id, "?showInput=false")
    with_history = status(durable_host, instance_id, "?showHistory=True")
    with_output = status(durable_host, instance_id, "?showHistory=true&showHistoryOutput=TRUE")

    assert plain.status == 200 and plain.headers["content-type"] == JSON_UTF8
    assert list(plain.json()) == STATUS_KEYS
    assert plain.json()["runtimeStatus"] == "Completed"
    assert plain.json()["input"] == '["Kyiv"]' and plain.json()["output"] == ["Hello Kyiv"]
    assert "location" not in plain.headers
    assert list(no_input.json()) == STATUS_KEYS and no_input.json()["input"] is None
    rows = with_history.json()["historyEvents"]
    assert [row["EventType"] for row in rows] == ["ExecutionStarted", "TaskCompleted", "ExecutionCompleted"]
    assert rows[0]["FunctionName"] == "chain"
    assert rows[1]["FunctionName"] == "hello" and "Result" not in rows[1] and "ScheduledTime" in rows[1]
    assert rows[2]["OrchestrationStatus"] == "Completed" and "Result" not in rows[2]
    output_rows = with_output.json()["historyEvents"]
    assert output_rows[1]["Result"] == "Hello Kyiv" and output_rows[2]["Result"] == ["Hello Kyiv"]


def test_status_of_a_failed_instance_is_200_or_500_on_request(durable_host: HostProcess) -> None:
    instance_id = finished(durable_host, "failing", "bad day")["instanceId"]

    plain = status(durable_host, instance_id)
    as_error = status(durable_host, instance_id, "?returnInternalServerErrorOnFailure=true")

    assert plain.status == 200
    assert as_error.status == 500
    assert plain.json() == as_error.json()
    output = plain.json()["output"]
    assert output.startswith("Orchestrator function 'failing' failed: Activity function 'boom' failed:  "
                             "ValueError: bad day \n ")
    details = json.loads(output.split(" \n ", 1)[1])
    assert details["Message"] == " ValueError: bad day"


def test_custom_status_over_16_kb_fails_the_instance(durable_host: HostProcess) -> None:
    """SetCustomStatus throws before the actions are replayed (durable-protocol.md §2.3, §2.12)."""
    big = finished(durable_host, "big_status", 20000)
    fits = finished(durable_host, "big_status", 8000)

    assert big["runtimeStatus"] == "Failed" and big["customStatus"] is None
    assert big["output"] == ("Orchestrator function 'big_status' failed: The UTF-16 size of the JSON-serialized "
                             "payload must not exceed 16 KB. The current payload size is 39 KB.")
    assert not history_of(status(durable_host, big["instanceId"], "?showHistory=true").json(), "TaskScheduled")
    assert fits["runtimeStatus"] == "Completed" and fits["customStatus"] == "x" * 8000
    assert fits["output"] == "Hello status"


# ---------------------------------------------------------------------------- DELETE instances/{id}

def test_purge_of_one_instance_is_200_then_404(durable_host: HostProcess) -> None:
    instance_id = finished(durable_host)["instanceId"]

    first = durable_host.call("DELETE", f"{WEBHOOK}/instances/{instance_id}")
    second = durable_host.call("DELETE", f"{WEBHOOK}/instances/{instance_id}")

    assert first.status == 200 and first.json() == {"instancesDeleted": 1}
    assert (second.status, second.body) == (404, b"")
    assert status(durable_host, instance_id).status == 404


# ---------------------------------------------------------------------------- GET / DELETE instances

def test_list_filters_pages_and_hides_input_on_request(durable_host: HostProcess) -> None:
    prefix = unique("list")
    ids = [start_id(durable_host, "chain", [str(i)], f"{prefix}-{i}") for i in (2, 0, 1)]
    for instance_id in ids:
        wait_status(durable_host, instance_id)
    runner = start_id(durable_host, "wait_event", {}, f"{prefix}-running")
    wait_status(durable_host, runner, "Running")

    first = durable_host.call("GET", f"{WEBHOOK}/instances?instanceIdPrefix={prefix}&top=2")
    token = first.headers["x-ms-continuation-token"]
    rest = durable_host.call("GET", f"{WEBHOOK}/instances/?instanceIdPrefix={prefix}&top=2",
                             headers={"x-ms-continuation-token": token})
    completed = durable_host.call("GET", f"{WEBHOOK}/instances?instanceIdPrefix={prefix}"
                                         "&runtimeStatus=Completed&showInput=false")
    running = durable_host.call("GET", f"{WEBHOOK}/instances?instanceIdPrefix={prefix}"
                                       "&runtimeStatus=Running,Pending")

    assert first.status == 200 and len(first.json()) == 2 and token
    assert rest.status == 200 and len(rest.json()) == 2
    assert rest.headers.get("x-ms-continuation-token", "") == ""
    listed = [row["instanceId"] for row in first.json() + rest.json()]
    assert listed == sorted([*ids, runner])  # PartitionKey (instance id) order, not creation order
    assert all(list(row) == STATUS_KEYS for row in first.json() + rest.json())
    assert sorted(row["instanceId"] for row in completed.json()) == sorted(ids)
    assert all(row["input"] is None for row in completed.json())
    assert [row["instanceId"] for row in running.json()] == [runner]
    operate(durable_host, runner, "terminate")


def test_purge_by_filter_needs_created_time_from(durable_host: HostProcess) -> None:
    reply = durable_host.call("DELETE", f"{WEBHOOK}/instances")

    assert reply.status == 400
    assert reply.json() == "Please provide value for 'createdTimeFrom' parameter."


def test_purge_by_filter_deletes_what_matches_and_404s_on_nothing(durable_host: HostProcess) -> None:
    since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ids = [finished(durable_host, "chain", ["p"], prefix="purged")["instanceId"] for _ in range(2)]
    runner = waiting(durable_host, "kept")

    reply = durable_host.call("DELETE", f"{WEBHOOK}/instances?createdTimeFrom={since}&runtimeStatus=Completed")
    again = durable_host.call("DELETE", f"{WEBHOOK}/instances?createdTimeFrom={since}&runtimeStatus=Completed")
    future = durable_host.call("DELETE", f"{WEBHOOK}/instances?createdTimeFrom=2999-01-01T00:00:00Z")
    # the provider purges only finished instances: a running one survives, even when asked for by status
    running = durable_host.call("DELETE", f"{WEBHOOK}/instances?createdTimeFrom={since}&runtimeStatus=Running")
    unfiltered = durable_host.call("DELETE", f"{WEBHOOK}/instances?createdTimeFrom={since}")

    assert reply.status == 200 and reply.json() == {"instancesDeleted": 2}
    assert (again.status, again.body) == (404, b"")
    assert (future.status, future.body) == (404, b"")
    assert (running.status, running.body) == (404, b"")
    assert (unfiltered.status, unfiltered.body) == (404, b"")
    assert all(status(durable_host, instance_id).status == 404 for instance_id in ids)
    assert status(durable_host, runner).status == 202
    operate(durable_host, runner, "terminate")


# ---------------------------------------------------------------------------- terminate / suspend / resume

def test_terminate_is_404_202_then_410(durable_host: HostProcess) -> None:
    instance_id = waiting(durable_host)

    unknown = operate(durable_host, "never-started", "terminate", "?reason=x")
    reply = operate(durable_host, instance_id, "terminate", "?reason=enough%20waiting")
    ended = wait_status(durable_host, instance_id)
    again = operate(durable_host, instance_id, "terminate", "?reason=again")

    assert (unknown.status, unknown.body) == (404, b"")
    assert (reply.status, reply.body) == (202, b"")
    assert ended["runtimeStatus"] == "Terminated" and ended["output"] == "enough waiting"
    assert status(durable_host, instance_id).status == 200
    assert (again.status, again.body) == (410, b"")


def test_terminate_a_suspended_instance(durable_host: HostProcess) -> None:
    instance_id = waiting(durable_host)
    assert operate(durable_host, instance_id, "suspend").status == 202
    suspended = wait_status(durable_host, instance_id, "Suspended")
    reply = status(durable_host, instance_id)

    assert (reply.status, reply.headers["retry-after"]) == (202, "5")
    assert suspended["runtimeStatus"] == "Suspended"
    assert operate(durable_host, instance_id, "terminate", "?reason=while%20paused").status == 202
    ended = wait_status(durable_host, instance_id)
    assert (ended["runtimeStatus"], ended["output"]) == ("Terminated", "while paused")


def test_suspend_and_resume_with_every_status_code(durable_host: HostProcess) -> None:
    instance_id = waiting(durable_host)

    assert operate(durable_host, "never-started", "suspend").status == 404
    assert operate(durable_host, "never-started", "resume").status == 404
    not_suspended = operate(durable_host, instance_id, "resume", "?reason=early")
    assert not_suspended.status == 500
    assert not_suspended.json()["ExceptionType"] == "System.InvalidOperationException"
    assert operate(durable_host, instance_id, "suspend", "?reason=hold").status == 202
    assert wait_status(durable_host, instance_id, "Suspended")["output"] == "hold"
    twice = operate(durable_host, instance_id, "suspend")
    assert twice.status == 500
    assert twice.json()["Message"] == "Something went wrong while processing your request"
    assert twice.json()["ExceptionType"] == "System.InvalidOperationException"

    assert raise_event(durable_host, instance_id, "Approval", "yes").status == 202
    assert status(durable_host, instance_id).json()["runtimeStatus"] == "Suspended"
    assert operate(durable_host, instance_id, "resume", "?reason=go").status == 202
    done = wait_status(durable_host, instance_id)

    assert done["runtimeStatus"] == "Completed" and done["output"] == {"approved": '"yes"'}
    assert operate(durable_host, instance_id, "suspend").status == 410
    assert operate(durable_host, instance_id, "resume").status == 410


def test_the_suspend_and_resume_reasons_show_as_output_until_it_completes(durable_host: HostProcess) -> None:
    """Azure Storage writes the reason into the status row's Output (durable-protocol.md §2.14)."""
    instance_id = waiting(durable_host)
    operate(durable_host, instance_id, "suspend", "?reason=on%20hold")
    suspended = wait_status(durable_host, instance_id, "Suspended")
    operate(durable_host, instance_id, "resume", "?reason=go%20on")
    resumed = wait_status(durable_host, instance_id, "Running")
    raise_event(durable_host, instance_id, "Approval", "yes")
    done = wait_status(durable_host, instance_id)

    assert suspended["output"] == "on hold"
    assert resumed["output"] == "go on"
    assert done["output"] == {"approved": '"yes"'}


# ---------------------------------------------------------------------------- rewind

def test_rewind_is_404_410_500_then_202_for_a_failed_instance(durable_host: HostProcess) -> None:
    running = waiting(durable_host)
    completed = finished(durable_host)["instanceId"]
    failed = finished(durable_host, "rewindable", prefix="rewind")
    assert failed["runtimeStatus"] == "Failed"

    assert operate(durable_host, "never-started", "rewind").status == 404
    assert operate(durable_host, completed, "rewind").status == 410
    refused = operate(durable_host, running, "rewind", "?reason=no")
    assert refused.status == 500
    assert refused.json()["ExceptionMessage"] == ("The rewind operation is only supported on failed orchestration "
                                                  "instances.")
    reply = operate(durable_host, failed["instanceId"], "rewind", "?reason=fixed")
    rewound = status(durable_host, failed["instanceId"]).json()
    done = wait_status(durable_host, failed["instanceId"])

    assert (reply.status, reply.body) == (202, b"")
    # rewind merges only the status and the time: the failure stays the output until the completion
    assert rewound["runtimeStatus"] == "Completed" or rewound["output"] == failed["output"]
    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == ["Hello before", f"{failed['instanceId']} ok on try 2"]
    operate(durable_host, running, "terminate")


def test_rewind_of_a_parent_rewinds_its_failed_child(durable_host: HostProcess) -> None:
    parent = finished(durable_host, "rewindable_parent", prefix="rewind-parent")
    child_id = f"{parent['instanceId']}-child"
    assert parent["runtimeStatus"] == "Failed"
    assert status(durable_host, child_id).json()["runtimeStatus"] == "Failed"

    assert operate(durable_host, parent["instanceId"], "rewind").status == 202
    done = wait_status(durable_host, parent["instanceId"])

    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == ["Hello before", f"{child_id} ok on try 2"]
    assert status(durable_host, child_id).json()["runtimeStatus"] == "Completed"


# ---------------------------------------------------------------------------- restart

def test_restart_of_an_unknown_instance_is_400(durable_host: HostProcess) -> None:
    reply = operate(durable_host, "never-started", "restart")

    assert reply.status == 400
    assert reply.json()["Message"] == "InstanceId does not match a valid orchestration instance."


def test_restart_starts_again_with_a_new_or_the_same_id(durable_host: HostProcess) -> None:
    old = finished(durable_host, "chain", ["Again"])["instanceId"]

    fresh = operate(durable_host, old, "restart")
    same = operate(durable_host, old, "restart", "?restartWithNewInstanceId=false")

    assert fresh.status == 202 and list(fresh.json()) == CHECK_STATUS_KEYS
    assert fresh.headers["location"] == fresh.json()["statusQueryGetUri"]
    new_id = fresh.json()["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new_id)
    assert wait_status(durable_host, new_id)["output"] == ["Hello Again"]
    assert same.status == 202 and same.json()["id"] == old
    assert wait_status(durable_host, old)["output"] == ["Hello Again"]


# ---------------------------------------------------------------------------- raiseEvent

def test_raise_event_with_every_status_code(durable_host: HostProcess) -> None:
    running = waiting(durable_host)
    completed = finished(durable_host)["instanceId"]
    path = f"{WEBHOOK}/instances/{running}/raiseEvent/Approval"

    unknown = raise_event(durable_host, "never-started", "Approval", 1)
    gone = raise_event(durable_host, completed, "Approval", 1)
    not_json = durable_host.call("POST", path, raw=b"yes", headers={"Content-Type": "text/plain"})
    malformed = durable_host.call("POST", path, raw=b"{not json")
    accepted = durable_host.call("POST", path, {"ok": True})

    assert (unknown.status, unknown.body) == (404, b"")
    assert (gone.status, gone.body) == (410, b"")
    assert not_json.status == 400
    assert not_json.json() == {"Message": "Only application/json request content is supported"}
    assert malformed.status == 400 and malformed.json()["Message"] == "Invalid JSON content"
    assert (accepted.status, accepted.body) == (202, b"")
    assert wait_status(durable_host, running)["output"] == {"approved": {"ok": True}}


@pytest.mark.parametrize(("body", "position"), [(b"", "line 0, position 0"), (b"  ", "line 1, position 2")])
def test_raise_event_with_an_empty_body_is_400_invalid_json(durable_host: HostProcess, body: bytes,
                                                            position: str) -> None:
    """JToken.Load finds no token: JsonReaderException, so no null event (durable-protocol.md §6.2)."""
    running = waiting(durable_host)

    reply = durable_host.call("POST", f"{WEBHOOK}/instances/{running}/raiseEvent/Approval", raw=body)

    assert reply.status == 400
    payload = reply.json()
    assert list(payload) == ["Message", "ExceptionMessage", "ExceptionType", "StackTrace"]
    assert payload["Message"] == "Invalid JSON content"
    assert payload["ExceptionMessage"] == f"Error reading JToken from JsonReader. Path '', {position}."
    assert payload["ExceptionType"] == "Newtonsoft.Json.JsonReaderException"
    assert raise_event(durable_host, running, "Approval", "next").status == 202
    assert wait_status(durable_host, running)["output"] == {"approved": '"next"'}


def test_raise_event_from_the_python_client_arrives_as_json_text(durable_host: HostProcess) -> None:
    """The SDK's double encoding reaches the orchestrator as a str (SDK issue #295, durable-protocol.md §0)."""
    running = waiting(durable_host)

    assert raise_event(durable_host, running, "Approval", {"ok": True}).status == 202

    assert wait_status(durable_host, running)["output"] == {"approved": '{"ok": true}'}


# ---------------------------------------------------------------------------- entities

def test_entity_routes_signal_read_list_and_delete(durable_host: HostProcess) -> None:
    key = unique("e")
    path = f"{WEBHOOK}/entities/counter/{key}"

    missing = durable_host.call("GET", path)
    signals = [durable_host.call("POST", f"{path}?op=add", json.dumps(5)),  # the Python client's body
               durable_host.call("POST", f"{path}?op=add", json.dumps(2))]
    state = wait_until(lambda: (r := durable_host.call("GET", path)).status == 200 and r.json() == 7 and r, 10,
                       "the entity state 7")
    listed = durable_host.call("GET", f"{WEBHOOK}/entities/counter?fetchState=true")
    deleted = durable_host.call("DELETE", path)
    wait_until(lambda: durable_host.call("GET", path).status == 404, 10, "the entity to be deleted")

    assert (missing.status, missing.body) == (404, b"")
    assert [(r.status, r.body) for r in signals] == [(202, b""), (202, b"")]
    assert state.headers["content-type"] == JSON_UTF8
    assert listed.status == 200 and "x-ms-continuation-token" in listed.headers
    row = next(row for row in listed.json() if row["entityId"]["key"] == key)
    assert list(row) == ["entityId", "lastOperationTime", "state"]
    assert row["entityId"] == {"name": "counter", "key": key} and row["state"] == 7
    assert (deleted.status, deleted.body) == (202, b"")


def test_entity_signal_input_is_json_or_raw_text(durable_host: HostProcess) -> None:
    """A text body is the input string itself; the entity SDK decodes it as JSON text (§4.2)."""
    key = unique("t")
    path = f"{WEBHOOK}/entities/counter/{key}"

    text = durable_host.call("POST", f"{path}?op=set", raw=b'["as", "text"]', headers={"Content-Type": "text/plain"})
    wait_until(lambda: durable_host.call("GET", path).json() == ["as", "text"], 10, "the state from a text body")
    bad = durable_host.call("POST", f"{path}?op=set", raw=b"{broken")

    assert text.status == 202
    assert bad.status == 400 and bad.json()["Message"].startswith("Could not parse JSON content: ")
    assert list(bad.json()) == ["Message"]


def test_entity_with_the_empty_key_is_read_as_dollar(durable_host: HostProcess) -> None:
    assert durable_host.call("POST", f"{WEBHOOK}/entities/counter?op=set", json.dumps("empty key")).status == 202

    wait_until(lambda: durable_host.call("GET", f"{WEBHOOK}/entities/counter/$").status == 200, 10,
               "the entity with the empty key")
    assert durable_host.call("GET", f"{WEBHOOK}/entities/counter/$").json() == "empty key"


def test_signal_to_an_unknown_entity_is_400(durable_host: HostProcess) -> None:
    reply = durable_host.call("POST", f"{WEBHOOK}/entities/nobody/k?op=add", "1")

    assert reply.status == 400
    body = reply.json()
    head = ("The function 'nobody' doesn't exist, is disabled, or is not an entity function. "
            "Additional info: The following are the known entity functions: ")
    assert list(body) == ["Message"]
    assert body["Message"].startswith(head) and body["Message"].endswith(".")
    assert set(re.findall(r"'([^']+)'", body["Message"][len(head):])) == app_functions("entity_trigger")


# ---------------------------------------------------------------------------- anything else

@pytest.mark.parametrize(("method", "path"), [
    ("GET", "nothing/here"), ("POST", "instances/x/explode"), ("PUT", "instances/x"),
    ("GET", "instances/x/raiseEvent/E"), ("PUT", "entities/counter/k"),
])
def test_unknown_routes_are_404_with_an_empty_body(durable_host: HostProcess, method: str, path: str) -> None:
    reply = durable_host.call(method, f"{WEBHOOK}/{path}")

    assert (reply.status, reply.body) == (404, b"")
