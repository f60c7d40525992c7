"""Helpers for the durable end-to-end tests (tests/durable/test_e2e_*.py): a running host of the durable
test app, driven over real HTTP through the management webhook and the app's own client function."""

from __future__ import annotations

import ast
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from support import HostProcess, Reply
from support import wait_until as wait_until  # re-exported for the durable tests

from funcemu.invoke import InvocationResult, Invoker

APP = Path(__file__).parent / "durable" / "apps" / "durable_app"
WEBHOOK = "/runtime/webhooks/durabletask"
STORES = ["memory", "sqlite"]
TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")


def unique(prefix: str) -> str:
    """A fresh instance id (or entity key) starting with `prefix`."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def app_functions(trigger: str) -> set[str]:
    """Names of the test app's functions decorated with `@app.<trigger>(...)`, read from its source."""
    tree = ast.parse((APP / "function_app.py").read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            and any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == trigger
                    for d in node.decorator_list)}


def launch(data_dir: Path, storage: str, env: dict[str, str] | None = None) -> HostProcess:
    """A started host of the durable test app (the caller stops it)."""
    return HostProcess(APP, "--storage", storage, "--data-dir", str(data_dir), env=env).start()


def start(host: HostProcess, name: str, value: Any = None, instance_id: str | None = None,
          query: str = "") -> Reply:
    """POST orchestrators/{name}[/{id}] with the body the Python client sends: a JSON string of JSON text."""
    path = f"{WEBHOOK}/orchestrators/{name}" + (f"/{quote(instance_id, safe='')}" if instance_id else "")
    body = json.dumps(value) if value is not None else None
    return host.call("POST", path + query, body)


def start_id(host: HostProcess, name: str, value: Any = None, instance_id: str | None = None) -> str:
    reply = start(host, name, value, instance_id)
    assert reply.status == 202, (reply.status, reply.text, host.log[-3000:])
    return str(reply.json()["id"])


def status(host: HostProcess, instance_id: str, query: str = "") -> Reply:
    return host.call("GET", f"{WEBHOOK}/instances/{quote(instance_id, safe='')}{query}")


def operate(host: HostProcess, instance_id: str, operation: str, query: str = "") -> Reply:
    return host.call("POST", f"{WEBHOOK}/instances/{quote(instance_id, safe='')}/{operation}{query}")


def raise_event(host: HostProcess, instance_id: str, name: str, value: Any) -> Reply:
    """The Python client's raiseEvent body: a JSON string holding the JSON text of `value`."""
    return host.call("POST", f"{WEBHOOK}/instances/{instance_id}/raiseEvent/{name}", json.dumps(value))


def wait_status(host: HostProcess, instance_id: str, *statuses: str, timeout: float = 15) -> dict[str, Any]:
    """The status payload once the instance is in one of `statuses` (default: any terminal one)."""
    wanted = statuses or TERMINAL
    last: list[Any] = [None]

    def check() -> dict[str, Any] | None:
        reply = status(host, instance_id, "?showHistory=true&showHistoryOutput=true")
        last[0] = reply.json() if reply.body else reply.status
        payload = last[0]
        return payload if isinstance(payload, dict) and payload.get("runtimeStatus") in wanted else None

    try:
        return wait_until(check, timeout, f"instance {instance_id} to be {'/'.join(wanted)}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last: {last[0]}\nlog:\n{host.log[-4000:]}") from None


def client(host: HostProcess, call: str, instance_id: str | None = None, **args: Any) -> Reply:
    """Run one SDK client call in the app's `client_op` function (it goes through the RPC endpoint)."""
    path = f"/api/client/{call}" + (f"/{instance_id}" if instance_id else "")
    return host.call("POST", path, args or None)


def executions(host: HostProcess, function: str, since: int = 0) -> int:
    """How many times the host logged `Executing 'Functions.<function>'` after log line `since`."""
    marker = f"Executing 'Functions.{function}'"
    return sum(marker in line for line in host.lines[since:])


def history_of(payload: dict[str, Any], event_type: str) -> list[dict[str, Any]]:
    return [row for row in payload.get("historyEvents") or [] if row["EventType"] == event_type]


def expected_steps(key: str) -> dict[str, Any]:
    return {"chain": [2, 4], "gate": f"passed {key}", "fan": 20, "child": [f"Hello {key}"]}


def assert_ran_once(payload: dict[str, Any], completed_tasks: int) -> None:
    """One execution, every scheduled task completed exactly once, nothing left scheduled or failed."""
    kinds = [row["EventType"] for row in payload["historyEvents"]]
    assert kinds.count("ExecutionStarted") == 1 and kinds.count("ExecutionCompleted") == 1, kinds
    assert kinds.count("TaskCompleted") == completed_tasks, kinds
    assert "TaskScheduled" not in kinds and "SubOrchestrationInstanceCreated" not in kinds, kinds
    assert "TaskFailed" not in kinds, kinds


class InvokerHost:
    """What ActivityRunner needs of a host, for engine tests without a Host: `call`, a plain invocation
    without bindings."""

    def __init__(self) -> None:
        self.invoker = Invoker()

    async def call(self, spec: Any, trigger_name: str, value: Any, metadata: dict[str, Any], *, reason: str,
                   **_: Any) -> InvocationResult:
        return await self.invoker.invoke(spec, {trigger_name: value}, reason=reason)
