"""`funcemu durable <verb>`, each verb against a live host, plus how the verbs report failures."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import HostProcess, run_cli

from funcemu.cli import main

APP = Path(__file__).parent / "apps" / "cli_app"
WEBHOOK = "/runtime/webhooks/durabletask"


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    with HostProcess(APP, "--storage", "memory", "--time-skipping") as running:
        yield running


@pytest.fixture
def durable(host: HostProcess, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `funcemu durable VERB ARGS... --base-url <host>` in process; returns (status, stdout, stderr)."""

    def run(verb: str, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(["durable", verb, *args, "--base-url", host.url])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def status_of(host: HostProcess, instance_id: str) -> dict[str, Any]:
    reply = host.call("GET", f"{WEBHOOK}/instances/{instance_id}?showHistory=true&showHistoryOutput=true")
    return dict(reply.json()) if reply.body else {"status": reply.status}


def wait_until(host: HostProcess, instance_id: str, status: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status_of(host, instance_id)
        if current.get("runtimeStatus") == status:
            return current
        time.sleep(0.01)
    raise AssertionError(f"{instance_id} is not {status} after {timeout}s: {current}\n{host.log[-3000:]}")


def start(host: HostProcess, name: str, instance_id: str, value: Any = None) -> None:
    """Start as the Python client does: the input as JSON text in a JSON string."""
    body = None if value is None else json.dumps(value)
    assert host.call("POST", f"{WEBHOOK}/orchestrators/{name}/{instance_id}", body).status == 202


def test_start_new(host: HostProcess, durable: Any) -> None:
    status, out, _ = durable("start-new", "--function-name", "hello", "--input", '["Ada", "Lin"]', "--id", "s-1")

    assert status == 0
    assert out.startswith("Started 'hello': instance s-1\nStatus: http://127.0.0.1:")
    assert host.wait_for("s-1")["output"] == ["Hello Ada", "Hello Lin"]


def test_start_new_with_an_input_file_and_a_new_id(host: HostProcess, durable: Any, tmp_path: Path) -> None:
    (tmp_path / "input.json").write_text('["Grace"]')
    status, out, _ = durable("start-new", "--function-name", "hello", "--input", f"@{tmp_path / 'input.json'}")

    instance_id = out.split("instance ")[1].split()[0]
    assert status == 0 and len(instance_id) == 32
    assert host.wait_for(instance_id)["output"] == ["Hello Grace"]


def test_get_runtime_status(host: HostProcess, durable: Any) -> None:
    start(host, "hello", "g-1", ["Ada"])
    host.wait_for("g-1")

    status, out, _ = durable("get-runtime-status", "g-1", "--show-input")
    payload = json.loads(out)
    assert status == 0
    assert (payload["name"], payload["runtimeStatus"], payload["output"]) == ("hello", "Completed", ["Hello Ada"])
    assert json.loads(payload["input"]) == ["Ada"] and "historyEvents" not in payload  # JSON text, as the host shows it
    _, with_history, _ = durable("get-runtime-status", "--id", "g-1", "--show-history", "--show-output")
    assert json.loads(with_history)["historyEvents"][-1]["Result"] == ["Hello Ada"]


def test_get_history_prints_a_timeline_on_virtual_time(host: HostProcess, durable: Any) -> None:
    start(host, "nap", "h-1")
    host.wait_for("h-1")

    status, out, _ = durable("get-history", "h-1")

    lines = out.splitlines()
    assert status == 0 and lines[0] == "Instance h-1 of 'nap': Completed"
    assert "(02:00:00" in lines[1]  # last updated two virtual hours after creation
    rows = {line.split()[1]: line.split() for line in lines[3:]}
    assert rows["ExecutionStarted"][0] == "+0.000s"
    assert rows["TimerCreated"][2:] == ["fires", "at", rows["TimerCreated"][4], "(in", "02:00:00.000)"]
    assert rows["TimerFired"][0].startswith("+02:00:00.")
    assert rows["TaskCompleted"][2:4] == ["greet", "took"]
    assert [line for line in lines if '-> "Hello after the nap"' in line][0].split()[1] == "TaskCompleted"
    assert rows["ExecutionCompleted"][2] == "Completed"


def test_get_history_as_json_and_as_a_file_for_replay(host: HostProcess, durable: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    start(host, "hello", "h-2", ["Ada", "Lin"])
    host.wait_for("h-2")

    status, out, _ = durable("get-history", "h-2", "--json")
    assert status == 0 and [e["EventType"] for e in json.loads(out)["historyEvents"]][-1] == "ExecutionCompleted"
    export = tmp_path / "h-2.json"
    status, out, _ = durable("get-history", "h-2", "--output", str(export))
    assert status == 0 and out == f"Wrote the history of h-2 (4 events, funcemu export, exact sequence ids) to {export}\n"
    document = json.loads(export.read_text())
    assert document["format"] == "funcemu-history" and document["instance"]["instanceId"] == "h-2"
    assert [e["EventId"] for e in document["history"] if e["EventType"] == 4] == [0, 1]
    assert main(["replay", str(export), "--app", str(APP)]) == 0
    assert "exact sequence ids): no divergence." in capsys.readouterr().out


class OtherHost(http.server.BaseHTTPRequestHandler):
    """A host without funcemu's export route (func start, an app on Azure): only the management API."""

    payloads: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        body = self.payloads.get(self.path.split("?")[0])
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: Any) -> None:
        pass


def test_get_history_from_another_host_writes_the_management_json(host: HostProcess, capsys: Any,
                                                                  tmp_path: Path) -> None:
    start(host, "hello", "o-1", ["Ada"])
    host.wait_for("o-1")
    path = f"{WEBHOOK}/instances/o-1"
    OtherHost.payloads = {path: host.call("GET", f"{path}?showHistory=true&showHistoryOutput=true").body}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OtherHost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        history = tmp_path / "o-1.json"
        status = main(["durable", "get-history", "o-1", "--output", str(history),
                       "--base-url", f"http://127.0.0.1:{server.server_address[1]}"])
    finally:
        server.shutdown()
        server.server_close()

    assert status == 0 and "(3 events, management API JSON)" in capsys.readouterr().out
    assert "historyEvents" in json.loads(history.read_text())
    assert main(["replay", str(history), "--app", str(APP)]) == 0
    assert "rebuilt from the management API's history): no divergence." in capsys.readouterr().out


def test_get_instances(host: HostProcess, durable: Any) -> None:
    start(host, "await_go", "i-waiting")
    start(host, "hello", "i-done")
    host.wait_for("i-done")
    wait_until(host, "i-waiting", "Running")

    status, out, _ = durable("get-instances", "--runtime-status", "Running", "--instance-id-prefix", "i-")
    assert status == 0 and [row["instanceId"] for row in json.loads(out)] == ["i-waiting"]
    _, out, err = durable("get-instances", "--top", "1", "--instance-id-prefix", "i-")
    assert len(json.loads(out)) == 1 and err.startswith("More instances: --continuation-token ")


def test_raise_event(host: HostProcess, durable: Any) -> None:
    start(host, "await_go", "e-1")
    wait_until(host, "e-1", "Running")

    status, out, _ = durable("raise-event", "e-1", "--event-name", "Go", "--event-data", '{"speed": 3}')

    assert status == 0 and out == "Raised event 'Go' on instance e-1\n"
    assert host.wait_for("e-1")["output"] == {"got": {"speed": 3}}


def test_suspend_and_resume(host: HostProcess, durable: Any) -> None:
    start(host, "await_go", "sr-1")
    wait_until(host, "sr-1", "Running")

    assert durable("suspend", "sr-1", "--reason", "lunch")[0] == 0
    wait_until(host, "sr-1", "Suspended")
    assert durable("raise-event", "sr-1", "--event-name", "Go", "--event-data", "later")[0] == 0
    status, out, _ = durable("resume", "sr-1")
    assert status == 0 and out == "Resume requested for instance sr-1 (reason: resume by funcemu durable)\n"
    assert host.wait_for("sr-1")["output"] == {"got": "later"}


def test_terminate(host: HostProcess, durable: Any) -> None:
    start(host, "await_go", "t-1")
    wait_until(host, "t-1", "Running")

    status, out, _ = durable("terminate", "t-1", "--reason", "no longer needed")

    assert status == 0 and out == "Terminate requested for instance t-1 (reason: no longer needed)\n"
    final = host.wait_for("t-1")
    assert (final["runtimeStatus"], final["output"]) == ("Terminated", "no longer needed")


def test_rewind(host: HostProcess, durable: Any) -> None:
    start(host, "flaky", "r-1")
    assert host.wait_for("r-1")["runtimeStatus"] == "Failed"

    status, _, _ = durable("rewind", "r-1", "--reason", "try again")

    assert status == 0
    assert wait_until(host, "r-1", "Completed")["output"] == "attempt 2"


def test_purge_history(host: HostProcess, durable: Any) -> None:
    for instance_id in ("p-1", "p-2"):
        start(host, "hello", instance_id)
        host.wait_for(instance_id)

    assert durable("purge-history", "p-1") == (0, "Purged 1 instance(s)\n", "")
    assert status_of(host, "p-1") == {"status": 404}
    assert durable("purge-history", "p-1")[:2] == (0, "Purged 0 instance(s)\n")
    status, out, _ = durable("purge-history", "--runtime-status", "Completed")
    assert status == 0 and int(out.split()[1]) >= 1
    assert status_of(host, "p-2") == {"status": 404}


def test_delete_task_hub(host: HostProcess, durable: Any) -> None:
    start(host, "await_go", "d-1")
    start(host, "hello", "d-2")
    host.wait_for("d-2")
    wait_until(host, "d-1", "Running")

    status, out, _ = durable("delete-task-hub")

    deleted = re.fullmatch(r"Deleted the task hub's (\d+) instance\(s\) \(terminated (\d+) active first\)\n", out)
    assert status == 0 and deleted is not None, out
    assert int(deleted[1]) >= 2 and int(deleted[2]) >= 1
    assert json.loads(durable("get-instances")[1]) == []


def test_failures_are_explained(host: HostProcess, durable: Any) -> None:
    start(host, "hello", "f-1")
    host.wait_for("f-1")

    assert durable("get-runtime-status", "nope")[0] == 1
    assert durable("get-runtime-status", "nope")[2].startswith(
        "funcemu durable get-runtime-status: no instance 'nope' (get the status: 404 from http://")
    assert durable("terminate", "f-1")[2] == ("funcemu durable terminate: instance 'f-1' has already ended, so "
                                             "terminate is not possible (410)\n")
    status, _, err = durable("start-new", "--function-name", "no_such")
    assert status == 1 and "The function 'no_such' doesn't exist" in err
    assert durable("get-history")[:1] == (2,)
    assert durable("raise-event", "f-1", "--event-name", "Go", "--event-data", "@/no/such/file")[0] == 2


def test_an_unreachable_host_is_explained() -> None:
    done = run_cli("durable", "get-instances", "--base-url", "http://127.0.0.1:9")

    assert done.returncode == 1
    assert done.stderr.startswith("funcemu durable get-instances: cannot reach http://127.0.0.1:9: ")
    assert "--base-url" in done.stderr


def test_a_key_reaches_a_host_with_auth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with HostProcess(APP, "--storage", "memory", "--enable-auth", "--data-dir", str(tmp_path)) as secured:
        master = json.loads((tmp_path / "keys.json").read_text())["masterKey"]
        refused = main(["durable", "get-instances", "--base-url", secured.url])
        refusal = capsys.readouterr().err
        allowed = main(["durable", "start-new", "--function-name", "hello", "--id", "k-1", "--base-url", secured.url,
                        "--key", master, "--task-hub", "CliTests"])
        shown = main(["durable", "get-runtime-status", "k-1", "--base-url", secured.url, "--key", master])
        output = capsys.readouterr().out

    assert refused == 1 and "not authorized (401); pass the app's key with --key" in refusal
    assert allowed == 0 and shown == 0
    assert json.loads(output.split("\n", 2)[2])["instanceId"] == "k-1"
