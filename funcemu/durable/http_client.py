"""A small client for the Durable management API (standard library only), for `funcemu durable`.

Requests go to `<base>/runtime/webhooks/durabletask/...`, with `x-functions-key` when a key is given
and `taskHub=` when a task hub is named; non-success answers become `ManagementError`s whose message
says what was refused and why, in the host's own words when it sent any.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from funcemu.durable.export import HISTORY_ROUTE
from funcemu.durable.status import WEBHOOK_PATH
from funcemu.errors import FuncemuError

NO_BODY = object()


class ManagementError(FuncemuError):
    """The host refused a request or could not be reached."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return self.body.decode(errors="replace")

    def expect(self, *statuses: int, what: str, instance: str | None = None) -> Any:
        """The parsed body when the status is one of `statuses`; else a ManagementError that explains."""
        if self.status in statuses:
            return self.json()
        raise ManagementError(self.explain(what, instance))

    def explain(self, what: str, instance: str | None) -> str:
        if self.status == 404 and instance:
            return f"no instance '{instance}' ({what}: 404 from {self.url})"
        if self.status == 410 and instance:
            return f"instance '{instance}' has already ended, so {what} is not possible (410)"
        if self.status in (401, 403):
            return f"{what}: not authorized ({self.status}); pass the app's key with --key"
        body = self.json()
        detail = body.get("ExceptionMessage") or body.get("Message") if isinstance(body, dict) else body
        return f"{what} failed with {self.status}" + (f": {detail}" if detail else f" ({self.url})")


class ManagementClient:
    def __init__(self, base_url: str, *, key: str | None = None, task_hub: str | None = None,
                 timeout: float = 30) -> None:
        self.base_url, self.key, self.task_hub, self.timeout = base_url.rstrip("/"), key, task_hub, timeout

    def call(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = NO_BODY,
             headers: dict[str, str] | None = None, root: bool = False) -> Reply:
        """`path` is relative to the webhook base (or to the site with `root=True`)."""
        url = self._url(path, query, root)
        data = None if body is NO_BODY else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.key:
            all_headers["x-functions-key"] = self.key
        all_headers.update(headers or {})
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Reply(response.status, _headers(response.headers), response.read(), url)
        except urllib.error.HTTPError as err:
            return Reply(err.code, _headers(err.headers), err.read(), url)
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ManagementError(f"cannot reach {self.base_url}: {reason}. Is the app running (`funcemu start`)? "
                                  "Choose another host with --base-url.") from None

    def _url(self, path: str, query: dict[str, Any] | None, root: bool) -> str:
        params = {key: _query_value(value) for key, value in (query or {}).items() if value is not None}
        if self.task_hub and not root:
            params["taskHub"] = self.task_hub
        prefix = self.base_url if root else self.base_url + WEBHOOK_PATH
        return f"{prefix}/{path.lstrip('/')}" + (f"?{urlencode(params)}" if params else "")

    def status(self, instance_id: str, **flags: bool) -> dict[str, Any]:
        reply = self.call("GET", f"instances/{quote(instance_id, safe='')}", query=flags)
        payload = reply.expect(200, 202, what="get the status", instance=instance_id)
        if not isinstance(payload, dict):
            raise ManagementError(f"get the status of '{instance_id}': the host answered {payload!r}")
        return payload

    def all_instances(self, **query: Any) -> list[dict[str, Any]]:
        """Every page of `GET instances`."""
        rows: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            headers = {"x-ms-continuation-token": token} if token else {}
            reply = self.call("GET", "instances", query=query, headers=headers)
            rows += reply.expect(200, what="list instances") or []
            token = reply.headers.get("x-ms-continuation-token")
            if not token or token == "null":
                return rows

    def export(self, instance_id: str, status: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """funcemu's exact export when the host is funcemu; otherwise the management API's status JSON."""
        path = HISTORY_ROUTE.replace("{instanceId}", quote(instance_id, safe=""))
        reply = self.call("GET", path, root=True)
        document = reply.json() if reply.status == 200 else None
        if isinstance(document, dict) and isinstance(document.get("history"), list):
            return document, True
        return status, False


def _query_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _headers(headers: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()} if headers is not None else {}
