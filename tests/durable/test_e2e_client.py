"""End to end: every call of the SDK's DurableOrchestrationClient (durable-protocol.md §5.3), made by a
function of the test app through the host's RPC endpoint, with what it returns or raises; on memory and
sqlite."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from durable_support import WEBHOOK, client, launch, status, unique, wait_status, wait_until
from support import HostProcess, Reply, request

MANAGEMENT_KEYS = ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "rewindPostUri",
                   "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"]


def ok(reply: Reply) -> Any:
    assert reply.status == 200, (reply.status, reply.text)
    return reply.json()


def error(reply: Reply) -> str:
    """The text of the exception the SDK call raised in the app."""
    assert reply.status == 500, (reply.status, reply.text)
    return str(reply.json()["error"])


def waiting(host: HostProcess) -> str:
    instance_id = ok(client(host, "start", unique("waiting"), name="wait_event", input={}))
    wait_status(host, instance_id, "Running")
    return instance_id


def finished(host: HostProcess, name: str = "chain", value: Any = None) -> str:
    instance_id = ok(client(host, "start", unique(name), name=name, input=value))
    wait_status(host, instance_id)
    return instance_id


# ---------------------------------------------------------------------------- start_new

def test_start_new_returns_the_id(durable_host: HostProcess) -> None:
    given = unique("given")

    generated = ok(client(durable_host, "start", name="chain", input=["Bern"]))
    chosen = ok(client(durable_host, "start", given, name="chain", input=["Riga"]))

    assert len(generated) == 32 and chosen == given
    assert wait_status(durable_host, generated)["output"] == ["Hello Bern"]
    assert wait_status(durable_host, chosen)["output"] == ["Hello Riga"]


def test_start_new_of_an_unknown_orchestrator_raises_the_hosts_message(durable_host: HostProcess) -> None:
    message = error(client(durable_host, "start", name="nope"))

    assert message.startswith("The function 'nope' doesn't exist, is disabled, or is not an orchestrator "
                              "function. Additional info: The following are the known orchestrator functions: ")
    assert "'chain'" in message and "'wait_event'" in message


def test_start_new_with_an_invalid_id_raises(durable_host: HostProcess) -> None:
    message = error(client(durable_host, "start", "@nope", name="chain"))

    assert message == "instanceId (Parameter 'Orchestration instance ids must not start with @.')"


# ---------------------------------------------------------------------------- responses built by the SDK

def test_create_check_status_response_uses_the_request_origin(durable_host: HostProcess) -> None:
    instance_id = finished(durable_host)

    reply = durable_host.call("POST", f"/api/client/check/{instance_id}")

    assert reply.status == 202
    payload = reply.json()
    assert list(payload) == MANAGEMENT_KEYS
    assert reply.headers["location"] == payload["statusQueryGetUri"]
    assert reply.headers["retry-after"] == "10"
    assert payload["statusQueryGetUri"].startswith(f"{durable_host.url}{WEBHOOK}/instances/{instance_id}"
                                                   "?taskHub=EngineTests&connection=Storage&code=")
    followed = request("GET", payload["statusQueryGetUri"])
    assert followed.status == 200 and followed.json()["instanceId"] == instance_id


def test_create_http_management_payload_fills_in_the_id(durable_host: HostProcess) -> None:
    payload = ok(durable_host.call("POST", "/api/client/payload/some-id"))

    assert list(payload) == MANAGEMENT_KEYS
    assert payload["id"] == "some-id"
    assert re.search(r"/instances/some-id/rewind\?reason=\{text\}&taskHub=EngineTests&connection=Storage&code=\w+$",
                     payload["rewindPostUri"])


def test_wait_for_completion_answers_200_500_or_202(durable_host: HostProcess) -> None:
    completed = finished(durable_host, "chain", ["Wait"])
    failed = finished(durable_host, "failing", "sad")
    running = waiting(durable_host)

    done = durable_host.call("POST", f"/api/client/wait/{completed}", {"timeout": 5000})
    broken = durable_host.call("POST", f"/api/client/wait/{failed}", {"timeout": 5000})
    pending = durable_host.call("POST", f"/api/client/wait/{running}", {"timeout": 300})

    assert (done.status, done.json()) == (200, ["Hello Wait"])
    assert broken.status == 500 and broken.json()["runtimeStatus"] == "Failed"
    assert broken.json()["output"].startswith("Orchestrator function 'failing' failed: ")
    assert pending.status == 202 and pending.json()["id"] == running
    client(durable_host, "terminate", running)


# ---------------------------------------------------------------------------- status queries

def test_get_status_with_and_without_history(durable_host: HostProcess) -> None:
    instance_id = finished(durable_host, "chain", ["Nice"])

    plain = ok(client(durable_host, "status", instance_id))
    full = ok(client(durable_host, "status", instance_id, history=True, output=True, input=True))
    missing = client(durable_host, "status", "never-started")

    assert plain["runtimeStatus"] == "Completed" and plain["output"] == ["Hello Nice"]
    assert plain["input"] == '["Nice"]' and plain["name"] == "chain" and plain["instanceId"] == instance_id
    assert plain["historyEvents"] is None
    rows = full["historyEvents"]
    assert [row["EventType"] for row in rows] == ["ExecutionStarted", "TaskCompleted", "ExecutionCompleted"]
    assert rows[1]["Result"] == "Hello Nice"
    assert missing.status == 200 and missing.json() is None


def test_get_status_all_and_by_filters(durable_host: HostProcess) -> None:
    done = finished(durable_host)
    running = waiting(durable_host)

    everything = {row["instanceId"] for row in ok(client(durable_host, "all"))}
    by_status = ok(client(durable_host, "by", statuses=["Running"], prefix="waiting-"))
    by_prefix = ok(client(durable_host, "by", prefix=running))

    assert {done, running} <= everything
    assert running in {row["instanceId"] for row in by_status}
    assert all(row["runtimeStatus"] == "Running" for row in by_status)
    assert [row["instanceId"] for row in by_prefix] == [running]
    client(durable_host, "terminate", running)


# ---------------------------------------------------------------------------- raise_event

def test_raise_event_delivers_and_reports_each_refusal(durable_host: HostProcess) -> None:
    running = waiting(durable_host)
    completed = finished(durable_host)

    assert ok(client(durable_host, "raise", running, name="Approval", data={"by": "me"})) == "raised"
    gone = error(client(durable_host, "raise", completed, name="Approval", data=1))
    unknown = error(client(durable_host, "raise", "never-started", name="Approval", data=1))

    assert wait_status(durable_host, running)["output"] == {"approved": '{"by": "me"}'}
    assert gone == f"Instance with ID {completed} is gone: either completed or failed"
    assert unknown == "No instance with ID never-started found."


# ---------------------------------------------------------------------------- terminate / suspend / resume

def test_terminate_suspend_and_resume(durable_host: HostProcess) -> None:
    paused = waiting(durable_host)
    stopped = waiting(durable_host)

    assert ok(client(durable_host, "suspend", paused)) == "suspended"
    assert wait_status(durable_host, paused, "Suspended")["runtimeStatus"] == "Suspended"
    assert ok(client(durable_host, "raise", paused, name="Approval", data="later")) == "raised"
    assert ok(client(durable_host, "resume", paused)) == "resumed"
    assert wait_status(durable_host, paused)["output"] == {"approved": '"later"'}
    assert ok(client(durable_host, "terminate", stopped, reason="no more")) == "terminated"
    ended = wait_status(durable_host, stopped)

    assert ended["runtimeStatus"] == "Terminated" and ended["output"] == "no more"
    assert ok(client(durable_host, "terminate", stopped)) == "terminated"  # 410 is fine for the SDK
    assert ok(client(durable_host, "suspend", stopped)) == "suspended"
    assert error(client(durable_host, "terminate", "never-started")) == "No instance with ID 'never-started' found."
    assert error(client(durable_host, "suspend", "never-started")) == "No instance with ID 'never-started' found."
    assert error(client(durable_host, "resume", "never-started")) == "No instance with ID 'never-started' found."


# ---------------------------------------------------------------------------- rewind / restart / purge

def test_rewind_of_failed_completed_and_unknown_instances(durable_host: HostProcess) -> None:
    failed = finished(durable_host, "rewindable")
    completed = finished(durable_host)

    assert ok(client(durable_host, "rewind", failed)) == "rewound"
    gone = error(client(durable_host, "rewind", completed))
    unknown = error(client(durable_host, "rewind", "never-started"))

    assert wait_status(durable_host, failed)["output"] == ["Hello before", f"{failed} ok on try 2"]
    assert gone == "The rewind operation is only supported on failed orchestration instances."
    assert unknown == "No instance with ID never-started found."


def test_rewind_of_a_running_instance_raises(durable_host: HostProcess) -> None:
    running = waiting(durable_host)

    message = error(client(durable_host, "rewind", running))

    assert message.startswith("Received unexpected payload from the durable-extension: [500, ")
    assert "The rewind operation is only supported on failed orchestration instances." in message
    assert status(durable_host, running).json()["runtimeStatus"] == "Running"
    client(durable_host, "terminate", running)


def test_restart_returns_the_new_or_the_same_id(durable_host: HostProcess) -> None:
    old = finished(durable_host, "chain", ["Re"])

    new_id = ok(client(durable_host, "restart", old))
    same_id = ok(client(durable_host, "restart", old, new_id=False))
    unknown = error(client(durable_host, "restart", "never-started"))

    assert isinstance(new_id, str) and new_id != old and same_id == old
    assert wait_status(durable_host, new_id)["output"] == ["Hello Re"]
    assert wait_status(durable_host, old)["output"] == ["Hello Re"]
    assert unknown == "No instance with ID 'never-started' found."


def test_purge_one_and_purge_by_filter(durable_host: HostProcess) -> None:
    since = datetime.now(timezone.utc).isoformat()
    one = finished(durable_host)
    two = [finished(durable_host, "failing", "x") for _ in range(2)]

    assert ok(client(durable_host, "purge", one)) == 1
    assert ok(client(durable_host, "purge", one)) == 0
    assert ok(client(durable_host, "purge_by", since=since, statuses=["Failed"])) == 2
    assert ok(client(durable_host, "purge_by", since=since, statuses=["Failed"])) == 0
    assert all(status(durable_host, instance_id).status == 404 for instance_id in [one, *two])


# ---------------------------------------------------------------------------- entities

def test_signal_entity_and_read_entity_state(durable_host: HostProcess) -> None:
    key = unique("c")

    before = ok(client(durable_host, "read", key))
    assert ok(client(durable_host, "signal", key, op="add", input=4)) == "signaled"
    assert ok(client(durable_host, "signal", key, op="add", input=6)) == "signaled"
    after = wait_until(lambda: (r := ok(client(durable_host, "read", key)))["state"] == 10 and r, 10,
                       "the entity state 10")

    assert before == {"exists": False, "state": None}
    assert after == {"exists": True, "state": 10}
    assert ok(client(durable_host, "signal", key, op="delete")) == "signaled"
    wait_until(lambda: not ok(client(durable_host, "read", key))["exists"], 10, "the entity to be deleted")


def test_the_host_stops_cleanly_after_client_calls(tmp_path: Path) -> None:
    host = launch(tmp_path, "memory")
    try:
        wait_status(host, ok(client(host, "start", name="chain", input=["bye"])))
    finally:
        host.stop()

    assert host.wait_exit() == 0
    assert "Unclosed client session" not in host.log and "Traceback" not in host.log
