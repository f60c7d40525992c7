"""A durable client for tests, over the real HTTP management API (so it works against any host).

    instance_id = durable_client.start_via("/api/orders", json={...})   # through an HTTP starter
    status = durable_client.wait_for_completion(instance_id)            # deadline-bounded poll
    assert status["runtimeStatus"] == "Completed"

Statuses are the host's JSON payloads (plain dicts): `name`, `instanceId`, `runtimeStatus`, `input`,
`customStatus`, `output`, `createdTime`, `lastUpdatedTime` and, when asked for, `historyEvents`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from funcemu.testing.httpclient import HttpClient, Response

if TYPE_CHECKING:
    from funcemu.testing.clock import Clock

Status = dict[str, Any]

MANAGEMENT = "/runtime/webhooks/durabletask"
TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
RUNNING = ("Pending", "Running", "Suspended", "ContinuedAsNew")
RUNTIME_STATUSES = ("Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Canceled", "Terminated",
                    "Suspended")
EPOCH = "2000-01-01T00:00:00Z"  # purge filters need a lower bound; Azure Tables reject dates before 1601


class DurableApiError(AssertionError):
    """The host answered a management call with an unexpected status code."""

    def __init__(self, action: str, response: Response) -> None:
        super().__init__(f"{action} failed: {response}")
        self.response = response


class OrchestrationTimeout(TimeoutError):
    """A wait ran out; the message shows the instance, its last status and its history."""

    def __init__(self, instance_id: str, waited_for: str, timeout: float, last: Status | None) -> None:
        super().__init__(
            f"instance {instance_id!r} did not reach {waited_for} within {timeout:g} s\n{describe(last)}"
        )
        self.instance_id = instance_id
        self.last_status = last


class OrchestrationFailed(AssertionError):
    def __init__(self, instance_id: str, status: Status) -> None:
        super().__init__(
            f"instance {instance_id!r} ended {status.get('runtimeStatus')}, not Completed\n{describe(status)}"
        )
        self.status = status


class DurableClient:
    """Start, observe and steer orchestrations of one host. `timeout` is the default wait in seconds."""

    __test__ = False

    def __init__(
        self, http: HttpClient, timeout: float = 10.0, poll_interval: float = 0.25, clock: Clock | None = None
    ) -> None:
        self.http = http
        self.clock = clock  # a time-skipping clock: waits for a result let it skip to the next timer
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.started: list[str] = []
        self._status_urls: dict[str, str] = {}

    # -- starting -------------------------------------------------------------------------------------

    def start(self, orchestrator: str, input: Any = None, instance_id: str | None = None) -> str:
        """Start through the management API (`POST orchestrators/{name}[/{id}]`); returns the id."""
        path = f"{MANAGEMENT}/orchestrators/{quote(orchestrator, safe='')}"
        if instance_id is not None:
            path += f"/{quote(instance_id, safe='')}"
        response = self.http.post(path, input)
        return self._remember(f"start {orchestrator!r}", response)

    def start_via(self, path: str, json: Any = None, *, expect: int = 202) -> str:
        """POST to an HTTP starter that answers with `create_check_status_response`; returns the id."""
        __tracebackhide__ = True  # pytest shows the test's line, not this helper's
        response = self.http.post(path, json)
        if response.status != expect:
            raise DurableApiError(f"POST {path} (expected {expect})", response)
        return self._remember(f"POST {path}", response)

    def _remember(self, action: str, response: Response) -> str:
        payload = response.json() if response.status == 202 else None
        if not isinstance(payload, dict) or "id" not in payload:
            raise DurableApiError(f"{action} (expected 202 with a check-status payload)", response)
        instance_id = str(payload["id"])
        if payload.get("statusQueryGetUri"):
            self._status_urls[instance_id] = payload["statusQueryGetUri"]
        self.started.append(instance_id)
        return instance_id

    # -- observing ------------------------------------------------------------------------------------

    def status(self, instance_id: str, history: bool = False) -> Status | None:
        """The status payload, with `historyEvents` (outputs included) when `history`; None if unknown."""
        params = {"showHistory": "true", "showHistoryOutput": "true"} if history else None
        response = self.http.get(self._status_url(instance_id), params)
        if response.status == 404:
            return None
        if response.status not in (200, 202, 500):
            raise DurableApiError(f"status of {instance_id!r}", response)
        status = response.json()
        if not isinstance(status, dict):
            raise DurableApiError(f"status of {instance_id!r} (expected a JSON object)", response)
        return status

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        status = self.status(instance_id, history=True)
        if status is None:
            raise LookupError(f"no instance {instance_id!r}")
        return list(status.get("historyEvents") or [])

    def wait_for_status(
        self, instance_id: str, condition: str | Callable[[Status], bool], timeout: float | None = None
    ) -> Status:
        """Poll until `condition` (a runtimeStatus name, or a predicate on the status) holds.

        Time does not skip here: a test can wait for a state, then act before any timer fires.
        """
        __tracebackhide__ = True  # pytest shows the test's line, not this helper's
        check, waited_for = _condition(condition)
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        pause = min(0.02, self.poll_interval)
        last: Status | None = None
        while True:
            last = self.status(instance_id)
            if last is not None and check(last):
                return last
            left = deadline - time.monotonic()
            if left <= 0:
                raise OrchestrationTimeout(
                    instance_id, waited_for, limit, self._with_history(instance_id, last)
                )
            time.sleep(min(pause, left))
            pause = min(pause * 2, self.poll_interval)

    def wait_for_completion(self, instance_id: str, timeout: float | None = None) -> Status:
        """Wait for a terminal status (Completed, Failed, Terminated, Canceled); returns it with history.

        With a time-skipping clock, durable timers fire at once while this waits.
        """
        __tracebackhide__ = True  # pytest shows the test's line, not this helper's
        with self.clock.auto_skipping() if self.clock else nullcontext():
            self.wait_for_status(instance_id, ended, timeout)
        final = self.status(instance_id, history=True)
        if final is None:
            raise LookupError(f"instance {instance_id!r} disappeared after it ended")
        return final

    def wait_for_output(self, instance_id: str, timeout: float | None = None) -> Any:
        """Wait for the end and return the output; raise OrchestrationFailed unless it Completed."""
        __tracebackhide__ = True  # pytest shows the test's line, not this helper's
        final = self.wait_for_completion(instance_id, timeout)
        if final.get("runtimeStatus") != "Completed":
            raise OrchestrationFailed(instance_id, final)
        return final.get("output")

    # -- steering -------------------------------------------------------------------------------------

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Raise an event with `data` sent as raw JSON (the orchestrator receives the value itself)."""
        path = f"{self._instance_path(instance_id)}/raiseEvent/{quote(name, safe='')}"
        response = self.http.post(path, data=json.dumps(data), headers={"Content-Type": "application/json"})
        if response.status != 202:
            raise DurableApiError(f"raise event {name!r} on {instance_id!r}", response)

    def terminate(self, instance_id: str, reason: str = "terminated by a test") -> None:
        response = self.http.post(f"{self._instance_path(instance_id)}/terminate", params={"reason": reason})
        if response.status not in (202, 410):
            raise DurableApiError(f"terminate {instance_id!r}", response)

    def purge(self, instance_id: str) -> int:
        response = self.http.delete(self._instance_path(instance_id))
        if response.status == 404:
            return 0
        if response.status != 200:
            raise DurableApiError(f"purge {instance_id!r}", response)
        return int(response.json()["instancesDeleted"])

    def instances(self, runtime_status: tuple[str, ...] = ()) -> list[Status]:
        """All instances (following continuation tokens), optionally only those in `runtime_status`."""
        found: list[Status] = []
        params = {"runtimeStatus": ",".join(runtime_status)} if runtime_status else {}
        token = ""
        while True:
            headers = {"x-ms-continuation-token": token} if token else None
            response = self.http.request("GET", f"{MANAGEMENT}/instances", params=params, headers=headers)
            if response.status != 200:
                raise DurableApiError("list instances", response)
            found += response.json() or []
            token = response.header("x-ms-continuation-token") or ""
            if not token or token == "null":
                return found

    def purge_all(self) -> int:
        """Delete every instance that has ended (the host keeps running ones)."""
        response = self.http.delete(f"{MANAGEMENT}/instances", {"createdTimeFrom": EPOCH})
        if response.status == 404:
            return 0
        if response.status != 200:
            raise DurableApiError("purge all instances", response)
        return int(response.json()["instancesDeleted"])

    def reset(self, timeout: float | None = None) -> None:
        """Terminate every instance still running, wait until they ended, then purge everything. An app
        without durable functions has no management API (404): nothing to reset."""
        try:
            leftovers = [status["instanceId"] for status in self.instances(RUNNING)]
        except DurableApiError as error:
            if error.response.status == 404:
                return
            raise
        for instance_id in leftovers:
            self.terminate(instance_id, "reset between tests")
        for instance_id in leftovers:
            self.wait_for_status(instance_id, ended, timeout)
        self.purge_all()
        self.started.clear()
        self._status_urls.clear()

    # -- helpers --------------------------------------------------------------------------------------

    def _instance_path(self, instance_id: str) -> str:
        return f"{MANAGEMENT}/instances/{quote(instance_id, safe='')}"

    def _status_url(self, instance_id: str) -> str:
        return self._status_urls.get(instance_id) or self._instance_path(instance_id)

    def _with_history(self, instance_id: str, last: Status | None) -> Status | None:
        try:
            return self.status(instance_id, history=True) or last
        except (OSError, DurableApiError, ValueError):
            return last


def ended(status: Status) -> bool:
    return status.get("runtimeStatus") in TERMINAL


def _condition(condition: str | Callable[[Status], bool]) -> tuple[Callable[[Status], bool], str]:
    if condition is ended:
        return ended, f"a terminal status ({', '.join(sorted(TERMINAL))})"
    if isinstance(condition, str):
        _check_status_name(condition)
        return (lambda status: status.get("runtimeStatus") == condition), f"runtimeStatus {condition}"
    name = getattr(condition, "__name__", "<lambda>")
    return condition, ("the condition" if name == "<lambda>" else name)


def _check_status_name(name: str) -> None:
    """A misspelt status name would make a wait run out its whole timeout: reject it at once."""
    if name in RUNTIME_STATUSES:
        return
    hint = next((f" (did you mean {known!r}?)" for known in RUNTIME_STATUSES if known.lower() == name.lower()), "")
    raise ValueError(f"{name!r} is not a runtime status{hint}; the runtime statuses are "
                     f"{', '.join(RUNTIME_STATUSES)} (or pass a predicate on the status payload)")


def describe(status: Status | None) -> str:
    """A readable dump of a status and its history, for error messages."""
    if status is None:
        return "last status: (the host does not know the instance)"
    shown = {key: value for key, value in status.items() if key != "historyEvents"}
    lines = [f"last status: {json.dumps(shown, indent=2, default=str)}"]
    events = status.get("historyEvents")
    if events:
        lines.append("history:")
        lines += [f"  {json.dumps(event, default=str)}" for event in events]
    return "\n".join(lines)
