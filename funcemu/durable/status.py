"""Management-API payloads, rendered as the Durable extension renders them (durable-protocol.md §5.1, §6).

Pure functions without I/O or aiohttp, shared by the HTTP API (`durable/api.py`), the pytest plugin and
`funcemu replay`. JSON goes out through `to_json`, which writes what Newtonsoft's `SerializeObject` writes,
and stored payload text comes back through `parse_json_or_raw`, the extension's `ParseToJToken`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote_plus

from funcemu.durable.history import EventType
from funcemu.durable.store.base import InstanceState, RuntimeStatus

__all__ = [
    "CONNECTION_NAME", "STATUS_BY_NUMBER", "WEBHOOK_PATH", "check_status_payload", "client_binding_json", "format_status_time",
    "management_urls", "parse_json_or_raw", "render_history", "render_status", "to_json", "url_encode",
]

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
CONNECTION_NAME = "Storage"  # the Azure Storage provider's default connection name
INSTANCE_ID_PLACEHOLDER = "INSTANCEID"

# Newtonsoft escapes these three besides the control characters; Python's json keeps them raw.
_NEWTONSOFT_EXTRA_ESCAPES = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
STATUS_BY_NUMBER = {status.number: status for status in RuntimeStatus}


def to_json(value: Any) -> str:
    """Compact JSON as `JsonConvert.SerializeObject` writes it (non-ASCII text stays unescaped)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_NEWTONSOFT_EXTRA_ESCAPES)


def parse_json_or_raw(text: str | None) -> Any:
    """The extension's `ParseToJToken`: None stays None; the text is trimmed; "" stays ""; JSON text
    becomes its value; anything unparsable is the trimmed raw string (a terminate reason, a failure)."""
    if text is None:
        return None
    trimmed = text.strip()
    if not trimmed:
        return ""
    try:
        return json.loads(trimmed)
    except ValueError:
        return trimmed


def format_status_time(value: datetime) -> str:
    """`DateTime.ToString("s") + "Z"`: UTC, whole seconds, no fraction."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_status(state: InstanceState, history: list[dict[str, Any]] | None = None, *,
                  show_history_output: bool = False, show_input: bool = True) -> dict[str, Any]:
    """The status payload of `GET instances/{id}` and of each `GET instances` row, keys in the host's order.

    `history` is the raw stored history (SDK JSON shape); pass it only for `showHistory=true`. The
    `historyEvents` key is present only then, and never for a Pending instance (the host reads no history
    for Pending). `show_input=False` keeps the `input` key, with value null, as the host does.
    """
    payload: dict[str, Any] = {
        "name": state.name,
        "instanceId": state.instance_id,
        "runtimeStatus": state.runtime_status.value,
        "input": parse_json_or_raw(state.input) if show_input else None,
        "customStatus": parse_json_or_raw(state.custom_status),
        "output": parse_json_or_raw(state.output),
        "createdTime": format_status_time(state.created_time),
        "lastUpdatedTime": format_status_time(state.last_updated_time),
    }
    if history is not None and state.runtime_status is not RuntimeStatus.Pending:
        payload["historyEvents"] = render_history(history, show_history_output=show_history_output,
                                                  show_input=show_input)
    return payload


# ---------------------------------------------------------------------------------------------- history


_SCHEDULING_KIND: dict[int, int] = {
    EventType.TaskCompleted: EventType.TaskScheduled,
    EventType.TaskFailed: EventType.TaskScheduled,
    EventType.SubOrchestrationInstanceCompleted: EventType.SubOrchestrationInstanceCreated,
    EventType.SubOrchestrationInstanceFailed: EventType.SubOrchestrationInstanceCreated,
}
_WITH_RESULT = (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted)
_DROPPED_KINDS = (EventType.OrchestratorStarted, EventType.OrchestratorCompleted)


class _HistoryView:
    """The raw history plus what the row rewrites need: scheduling rows by (kind, EventId), and which of
    them a completion row consumed (those rows are dropped from the output)."""

    def __init__(self, events: list[dict[str, Any]], show_history_output: bool, show_input: bool) -> None:
        self.show_history_output = show_history_output
        self.show_input = show_input
        self.scheduled: dict[tuple[int, Any], int] = {}
        for index, event in enumerate(events):
            if event.get("EventType") in _SCHEDULING_KIND.values():
                self.scheduled[(event["EventType"], event.get("EventId"))] = index
        self.events = events
        self.consumed: set[int] = set()
        for event in events:
            match = self.scheduling_row(event)
            if match is not None:
                self.consumed.add(match)

    def scheduling_row(self, event: dict[str, Any]) -> int | None:
        kind = _SCHEDULING_KIND.get(event.get("EventType", -1))
        if kind is None:
            return None
        return self.scheduled.get((kind, event.get("TaskScheduledId")))


def render_history(events: list[dict[str, Any]], *, show_history_output: bool = False,
                   show_input: bool = True) -> list[dict[str, Any]]:
    """The `historyEvents` rows (§6.3): string EventType, no EventId/IsPlayed, no OrchestratorStarted/
    Completed rows, scheduling rows folded into their completions, Result only with `show_history_output`."""
    view = _HistoryView(events, show_history_output, show_input)
    rows = []
    for index, event in enumerate(events):
        if index in view.consumed or event.get("EventType") in _DROPPED_KINDS:
            continue
        rows.append(_render_row(event, view))
    return rows


def _render_row(event: dict[str, Any], view: _HistoryView) -> dict[str, Any]:
    row = dict(event)
    kind = row.get("EventType")
    row["EventType"] = _enum_name(kind, lambda n: EventType(n).name)
    rewrite = _ROW_REWRITES.get(kind if isinstance(kind, int) else -1)
    if rewrite is not None:
        rewrite(row, event, view)
    row.pop("EventId", None)
    row.pop("IsPlayed", None)
    if not view.show_input:
        row.pop("Input", None)
    return row


def _enum_name(value: Any, name_of: Callable[[int], str]) -> Any:
    """As .NET's `Enum.TryParse(...).ToString()`: a known number becomes its name, another its digits."""
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    try:
        return name_of(value)
    except (ValueError, KeyError):
        return str(value)


def _rewrite_execution_started(row: dict[str, Any], event: dict[str, Any], view: _HistoryView) -> None:
    row["FunctionName"] = row.pop("Name", None)
    for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
        row.pop(key, None)


def _rewrite_scheduling(row: dict[str, Any], event: dict[str, Any], view: _HistoryView) -> None:
    row.pop("Version", None)


def _rewrite_completion(row: dict[str, Any], event: dict[str, Any], view: _HistoryView) -> None:
    index = view.scheduling_row(event)
    if index is not None:
        scheduled = view.events[index]
        row["ScheduledTime"] = scheduled.get("Timestamp")
        row["FunctionName"] = scheduled.get("Name")
        if view.show_input:
            row["Input"] = scheduled.get("Input")
    row.pop("TaskScheduledId", None)
    if event.get("EventType") in _WITH_RESULT:
        _keep_result_if_shown(row, view)


def _rewrite_execution_completed(row: dict[str, Any], event: dict[str, Any], view: _HistoryView) -> None:
    status = row.get("OrchestrationStatus")
    row["OrchestrationStatus"] = _enum_name(status, lambda n: STATUS_BY_NUMBER[n].value)
    _keep_result_if_shown(row, view)


def _keep_result_if_shown(row: dict[str, Any], view: _HistoryView) -> None:
    if view.show_history_output:
        row["Result"] = parse_json_or_raw(row.get("Result"))
    else:
        row.pop("Result", None)


def _rewrite_timer_fired(row: dict[str, Any], event: dict[str, Any], view: _HistoryView) -> None:
    row.pop("TimerId", None)


_ROW_REWRITES: dict[int, Callable[[dict[str, Any], dict[str, Any], _HistoryView], None]] = {
    EventType.ExecutionStarted: _rewrite_execution_started,
    EventType.TaskScheduled: _rewrite_scheduling,
    EventType.SubOrchestrationInstanceCreated: _rewrite_scheduling,
    EventType.TaskCompleted: _rewrite_completion,
    EventType.TaskFailed: _rewrite_completion,
    EventType.SubOrchestrationInstanceCompleted: _rewrite_completion,
    EventType.SubOrchestrationInstanceFailed: _rewrite_completion,
    EventType.ExecutionCompleted: _rewrite_execution_completed,
    EventType.TimerFired: _rewrite_timer_fired,
}


# ---------------------------------------------------------------------------------------------- URLs


def url_encode(text: str) -> str:
    """.NET `WebUtility.UrlEncode`: letters, digits and `-_.!*()` stay, a space becomes `+`, every other
    UTF-8 byte becomes `%XX` with upper-case hex (so `~` is encoded too, unlike Python's `quote`)."""
    return quote_plus(text, safe="!*()").replace("~", "%7E")


def _query_suffix(hub_name: str, system_key: str | None) -> str:
    suffix = f"taskHub={url_encode(hub_name)}&connection={CONNECTION_NAME}"
    return f"{suffix}&code={system_key}" if system_key else suffix


def management_urls(base_url: str, instance_id: str, hub_name: str, system_key: str | None) -> dict[str, str]:
    """The host's `HttpManagementPayload` for one instance; `base_url` is the webhook base."""
    prefix = f"{base_url.rstrip('/')}/instances/{url_encode(instance_id)}"
    suffix = _query_suffix(hub_name, system_key)
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{prefix}?{suffix}",
        "sendEventPostUri": f"{prefix}/raiseEvent/{{eventName}}?{suffix}",
        "terminatePostUri": f"{prefix}/terminate?reason={{text}}&{suffix}",
        "rewindPostUri": f"{prefix}/rewind?reason={{text}}&{suffix}",
        "purgeHistoryDeleteUri": f"{prefix}?{suffix}",
        "restartPostUri": f"{prefix}/restart?{suffix}",
        "suspendPostUri": f"{prefix}/suspend?reason={{text}}&{suffix}",
        "resumePostUri": f"{prefix}/resume?reason={{text}}&{suffix}",
    }


def check_status_payload(base_url: str, instance_id: str, hub_name: str,
                         system_key: str | None) -> dict[str, str]:
    """The 202 body of a start over HTTP: the management URLs without `rewindPostUri` (§6.2)."""
    urls = management_urls(base_url, instance_id, hub_name, system_key)
    del urls["rewindPostUri"]
    return urls


def client_binding_json(*, base_url: str, rpc_base_url: str, hub_name: str, system_key: str | None) -> str:
    """The `durableClient` binding value (§5.1), a JSON string.

    `base_url` is the public webhook base, e.g. `http://localhost:7071/runtime/webhooks/durabletask`;
    `rpc_base_url` the SDK's call base, e.g. `http://127.0.0.1:17071/durabletask/` (a missing final "/"
    is added: the SDK appends paths to it verbatim). `system_key` becomes `code=<key>` in every URL.
    """
    base = base_url.rstrip("/")
    required_query = f"code={system_key}" if system_key else ""
    creation = f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
    wait_query = "timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
    binding = {
        "taskHubName": hub_name,
        "connectionName": None,
        "creationUrls": {
            "createNewInstancePostUri": f"{creation}?{required_query}",
            # the host appends "&" + the key query, so without a key the URL ends with "&"
            "createAndWaitOnNewInstancePostUri": f"{creation}?{wait_query}&{required_query}",
        },
        "managementUrls": management_urls(base, INSTANCE_ID_PLACEHOLDER, hub_name, system_key),
        "baseUrl": base,
        "requiredQueryStringParameters": required_query,
        "rpcBaseUrl": rpc_base_url if rpc_base_url.endswith("/") else rpc_base_url + "/",
        "httpBaseUrl": None,
    }
    return to_json(binding)
