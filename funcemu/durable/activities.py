"""Running one activity work item: the user's activity function, or the built-in durable HTTP activity.

The result is the message the orchestration receives: TaskCompleted with the compact JSON of the
return value, or TaskFailed with the host's Reason and Details texts (durable-protocol.md §3).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from funcemu.durable import history as h
from funcemu.durable.orchestrator import compact, sdk_deprecations_ignored
from funcemu.durable.outcomes import HTTP_ACTIVITY
from funcemu.durable.store.base import ActivityItem, Message

if TYPE_CHECKING:
    from funcemu.durable.engine import Engine
    from funcemu.host import Host

log = logging.getLogger("funcemu.durable")
ACTIVITY_REASON = "(null)"
HTTP_POLL_DEFAULT = 30.0


def failure_details(message: str) -> str:
    """The .NET exception JSON the extension stores as TaskFailed.Details (users read its "Message")."""
    return compact({"$type": "System.Exception, System.Private.CoreLib", "ClassName": "System.Exception",
                    "Message": message, "Data": None, "InnerException": None, "HelpURL": None,
                    "StackTraceString": None, "RemoteStackTraceString": None, "RemoteStackIndex": 0,
                    "ExceptionMethod": None, "HResult": -2146233088, "Source": None, "WatsonBuckets": None})


def task_failure(item: ActivityItem, now: datetime, reason: str, message: str | None = None) -> Message:
    """The item's TaskFailed: `reason`, and Details whose Message is `message` (default: the reason)."""
    details = failure_details(message if message is not None else reason)
    return Message(item.instance_id, h.task_failed(now, item.task_id, reason, details), item.execution_id)


def activity_failure(item: ActivityItem, now: datetime, name: str, error: BaseException | str) -> Message:
    """The TaskFailed of an invocation of activity `name` that failed with `error` (an exception, or the
    worker's " Type: message" text), in the words of a function that raised it."""
    friendly = error if isinstance(error, str) else f" {type(error).__name__}: {error}"
    return task_failure(item, now, f"Activity function '{name}' failed: {friendly}", friendly)


def compact_text(text: str | None) -> str | None:
    """The SDK's JSON text re-serialized as the host stores it (`null` becomes no result)."""
    if text is None:
        return None
    value = json.loads(text)
    return None if value is None else compact(value)


class ActivityRunner:
    def __init__(self, host: Host, engine_ref: list[Engine]) -> None:
        self.host = host
        self._engine_ref = engine_ref

    async def __call__(self, item: ActivityItem) -> Message:
        engine = self._engine_ref[0]
        if item.name == HTTP_ACTIVITY:
            return await self._http(item, engine)
        spec = engine.registry.activity(item.name)
        if spec is None:
            reason = engine.registry.unknown_activity_message(item.name)
            return task_failure(item, engine.now(), reason)
        try:
            with sdk_deprecations_ignored():
                value = ActivityTriggerConverter.decode(
                    meta.Datum(item.input if item.input is not None else "null", "string"), trigger_metadata=None)
        except Exception as exc:  # the worker fails the invocation before calling the function
            log.error("Activity function '%s' of instance '%s' failed before it was called: %s: %s",
                      spec.durable_name, item.instance_id, type(exc).__name__, exc, exc_info=exc)
            return activity_failure(item, engine.now(), spec.durable_name, exc)
        result = await self.host.call(spec, spec.trigger["name"], value, {}, reason=ACTIVITY_REASON)
        if result.ok:
            try:
                with sdk_deprecations_ignored():
                    encoded = ActivityTriggerConverter.encode(result.return_value, expected_type=None)
                text = compact_text(encoded.value)
            except Exception as exc:  # a result that cannot be serialized fails the task
                return activity_failure(item, engine.now(), spec.durable_name, exc)
            return Message(item.instance_id, h.task_completed(engine.now(), item.task_id, text), item.execution_id)
        return activity_failure(item, engine.now(), spec.durable_name, " " + result.error_message)

    async def _http(self, item: ActivityItem, engine: Engine) -> Message:
        try:
            request = json.loads(item.input or "{}")
            response = await durable_http(request)
        except Exception as exc:
            return activity_failure(item, engine.now(), HTTP_ACTIVITY, exc)
        text = compact(response)
        return Message(item.instance_id, h.task_completed(engine.now(), item.task_id, text), item.execution_id)


async def durable_http(request: dict[str, Any]) -> dict[str, Any]:
    """One durable HTTP call, following the 202 + Location polling pattern to the end."""
    import aiohttp

    if request.get("tokenSource"):
        raise RuntimeError("Managed identity tokens (tokenSource) are not available locally; pass an "
                           "Authorization header instead.")
    method, uri = str(request.get("method", "GET")).upper(), str(request["uri"])
    headers = {k: (",".join(v) if isinstance(v, list) else str(v)) for k, v in (request.get("headers") or {}).items()}
    content = request.get("content")
    async with aiohttp.ClientSession() as session:
        status, out_headers, body = await _send(session, method, uri, headers, content)
        while status == 202 and "Location" in out_headers:
            await asyncio.sleep(_retry_after(out_headers))
            status, out_headers, body = await _send(session, "GET", out_headers["Location"], headers, None)
    return {"statusCode": status, "headers": out_headers, "content": body}


async def _send(session: Any, method: str, uri: str, headers: dict[str, str], content: Any) -> tuple[int, Any, str]:
    data = content.encode() if isinstance(content, str) else content
    async with session.request(method, uri, headers=headers, data=data, allow_redirects=False) as response:
        body = await response.text()
        merged: dict[str, Any] = {}
        for name, value in response.headers.items():
            merged[name] = [*merged[name], value] if isinstance(merged.get(name), list) else (
                [merged[name], value] if name in merged else value)
        return response.status, merged, body


def _retry_after(headers: dict[str, Any]) -> float:
    raw = headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else HTTP_POLL_DEFAULT
    except (TypeError, ValueError):
        return HTTP_POLL_DEFAULT
