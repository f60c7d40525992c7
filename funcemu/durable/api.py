"""The Durable HTTP management API (docs/durable-protocol.md §6): one handler for both bases.

    app.add_subapp(WEBHOOK_PATH, make_durable_app(engine, rpc=False, system_key=key))  # public webhook
    rpc_app.add_subapp(RPC_PATH, make_durable_app(engine, rpc=True, ...))  # the SDK's rpcBaseUrl

Routing copies the extension's `HttpApiHandler`: the path after the base is URL-decoded (`+` is a space),
trimmed of "/", and matched in the host's order; literal segments ignore case. Handlers parse the request,
call the `Engine` and render; `_error_response` turns every exception into the host's error answer.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import unquote_plus

from aiohttp import web

from funcemu.durable.engine import Engine, InstanceNotFoundError, InvalidStateError, UnknownOrchestratorError
from funcemu.durable.history import format_time, parse_time
from funcemu.durable.status import (
    STATUS_BY_NUMBER,
    WEBHOOK_PATH,
    check_status_payload,
    client_binding_json,
    parse_json_or_raw,
    render_status,
    to_json,
)
from funcemu.durable.store.base import InstanceQuery, InstanceState, RuntimeStatus

__all__ = ["RPC_PATH", "WEBHOOK_PATH", "DurableApi", "client_binding_json", "make_durable_app",
           "request_webhook_base", "render_status"]

log = logging.getLogger("funcemu.durable.api")

RPC_PATH = "/durabletask"
DEFAULT_PAGE_SIZE = 100
JSON_CONTENT_TYPE = "application/json"
ARGUMENT_ERROR = "One or more of the arguments submitted is incorrect"
SERVER_ERROR = "Something went wrong while processing your request"
_TERMINAL = frozenset(status for status in RuntimeStatus if status.is_terminal)

BaseUrlProvider = Callable[[web.Request], str]
Operation = Callable[[str, str | None], Awaitable[None]]  # (instance id, reason)


def request_webhook_base(request: web.Request) -> str:
    """The host's check-status base: the request's scheme and authority plus the webhook path."""
    return f"{request.scheme}://{request.host}{WEBHOOK_PATH}"


def make_durable_app(engine: Engine, *, rpc: bool, public_base_url: BaseUrlProvider | None = None,
                     system_key: str | None = None) -> web.Application:
    """A sub-application serving §6 under whatever prefix it is mounted at.

    `rpc=True` only changes `restart` (§6.5). `public_base_url(request)` gives the webhook base written into
    check-status payloads (default: the request's own origin + `/runtime/webhooks/durabletask`, as the host
    does); `system_key` adds `&code=<key>` to those URLs. Authorization is left to the mounting server.
    """
    api = DurableApi(engine, rpc=rpc, public_base_url=public_base_url or request_webhook_base,
                     system_key=system_key)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app


# ---------------------------------------------------------------------------------------------- responses


def _empty(status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers)


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=to_json(value), content_type=JSON_CONTENT_TYPE, charset="utf-8",
                        headers=headers)


def _message(status: int, message: str) -> web.Response:
    """`CreateErrorResponse(status, message)`: an HttpError with only a message."""
    return _json(status, {"Message": message})


def _exception_body(message: str, exc_message: str, exc_type: str, stack: str | None) -> dict[str, Any]:
    return {"Message": message, "ExceptionMessage": exc_message, "ExceptionType": exc_type,
            "StackTrace": stack}


def _stack_of(exc: BaseException) -> str | None:
    return "".join(traceback.format_tb(exc.__traceback__)) or None


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _error_response(exc: Exception) -> web.Response:
    """The one place engine and handler exceptions become responses (`HttpApiHandler.HandleRequestAsync`).

    ValueError plays .NET's ArgumentException (400) and RuntimeError its InvalidOperationException (500:
    suspend twice, resume a running instance, rewind a running one). InvalidStateError means the instance
    is terminal, which the handlers already answer with 410 before calling the engine; it only reaches
    here when the instance finished in between, and is answered the same way.
    """
    if isinstance(exc, InstanceNotFoundError):
        return _empty(404)
    if isinstance(exc, InvalidStateError):
        return _empty(410)
    if isinstance(exc, (UnknownOrchestratorError, ValueError)):
        body = _exception_body(ARGUMENT_ERROR, str(exc), "System.ArgumentException", _stack_of(exc))
        return _json(400, body)
    if type(exc) is RuntimeError:
        log.warning("durable API: %s", exc)
        exc_type = "System.InvalidOperationException"
    else:
        log.error("durable API request failed", exc_info=exc)
        exc_type = _type_name(exc)
    return _json(500, _exception_body(SERVER_ERROR, str(exc), exc_type, _stack_of(exc)))


def _no_json_token(text: str) -> NoReturn:
    """Raise Newtonsoft's JsonReaderException text for a body that is empty or only whitespace."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    line, position = len(lines), len(lines[-1])
    if position == 0:  # JsonTextReader reports line 0 while it is still at the start of a line
        line = 0
    raise ValueError(f"Error reading JToken from JsonReader. Path '', line {line}, position {position}.")


def _invalid_json(exc: ValueError) -> web.Response:
    exc_type = "Newtonsoft.Json.JsonReaderException"
    return _json(400, _exception_body("Invalid JSON content", str(exc), exc_type, _stack_of(exc)))


# ------------------------------------------------------------------------------------------- request parsing


class Query:
    """The query string as .NET's `NameValueCollection` sees it: names ignore case, a repeated name
    reads as its values joined with ",", and values are URL-decoded."""

    def __init__(self, request: web.Request) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in request.query.items():
            self._values.setdefault(name.lower(), []).append(value)

    def get(self, name: str) -> str | None:
        values = self._values.get(name.lower())
        return ",".join(values) if values else None

    def flag(self, name: str, default: bool) -> bool:
        """`bool.TryParse`: "true"/"false" in any case; anything else is the default."""
        value = (self.get(name) or "").strip().lower()
        return value == "true" if value in ("true", "false") else default

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None or not re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return None
        number = int(value)
        return number if -2**31 <= number < 2**31 else None

    def seconds(self, name: str) -> float | None:
        value = self.get(name)
        if value is None or not re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", value):
            return None
        return float(value)

    def time(self, name: str) -> datetime | None:
        """`DateTime.TryParse` for the ISO forms clients send; naive times are taken as UTC."""
        value = self.get(name)
        if not value:
            return None
        try:
            return parse_time(value)
        except ValueError:
            return None

    def statuses(self, name: str) -> list[RuntimeStatus] | None:
        """Comma-separated and/or repeated; names are case-sensitive (`Enum.TryParse`), numbers accepted,
        anything unparsable ignored. None when nothing parsed (no filter)."""
        found = []
        for part in (self.get(name) or "").split(","):
            text = part.strip()
            if text in RuntimeStatus.__members__:
                found.append(RuntimeStatus[text])
            elif re.fullmatch(r"[+-]?\d+", text) and int(text) in STATUS_BY_NUMBER:
                found.append(STATUS_BY_NUMBER[int(text)])
        return found or None


def _relative_path(request: web.Request) -> str:
    """The path after the mount point, decoded like .NET `WebUtility.UrlDecode` and trimmed of "/"."""
    canonical = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
    mount = canonical[: canonical.rfind("/{tail}")] if canonical.endswith("/{tail}") else ""
    raw_path = request.raw_path.split("?", 1)[0]
    return unquote_plus(raw_path[len(mount):]).strip("/")


async def _body_text(request: web.Request) -> str:
    """The body as text, like `ReadAsStringAsync`: bad bytes are replaced, never an error."""
    data = await request.read()
    try:
        text = data.decode(request.charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        text = data.decode("utf-8", errors="replace")
    return text.lstrip("\ufeff")


def _is_json_request(request: web.Request) -> bool:
    return request.content_type.lower() == JSON_CONTENT_TYPE


def _segment(parts: list[str], index: int) -> str | None:
    return parts[index] if index < len(parts) else None


# ---------------------------------------------------------------------------------------------- the handler


class DurableApi:
    def __init__(self, engine: Engine, *, rpc: bool, public_base_url: BaseUrlProvider,
                 system_key: str | None) -> None:
        self._engine = engine
        self._rpc = rpc
        self._public_base_url = public_base_url
        self._system_key = system_key
        self._operations: dict[str, tuple[Operation, frozenset[RuntimeStatus]]] = {
            "terminate": (engine.terminate, _TERMINAL),
            "suspend": (engine.suspend, _TERMINAL),
            "resume": (engine.resume, _TERMINAL),
            "rewind": (engine.rewind, _TERMINAL - {RuntimeStatus.Failed}),
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request, _relative_path(request).split("/"))
        except web.HTTPException:
            raise
        except Exception as exc:  # every failure is answered the host's way
            return _error_response(exc)

    async def _dispatch(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        """The host's route order (§6.1); an empty segment matches nothing."""
        head, count, method = parts[0].lower(), len(parts), request.method
        if "" in parts:
            return _empty(404)
        if head == "orchestrators" and count in (2, 3):
            if method != "POST":
                return _empty(404)
            return await self._start(request, parts[1], parts[2] if count == 3 else None)
        if head == "entities" and count <= 3:
            return await self._entities(request, _segment(parts, 1), _segment(parts, 2))
        if head == "instances" and count <= 3:
            return await self._instances(request, _segment(parts, 1), _segment(parts, 2))
        if head == "instances" and count == 4 and parts[2].lower() == "raiseevent":
            return await self._raise_event(request, parts[1], parts[3]) if method == "POST" else _empty(404)
        if head == "makeprimary" and count == 1:
            return _empty(200)  # no app lease here: this app is always the primary
        return _empty(404)

    # -- orchestrators

    async def _start(self, request: web.Request, name: str, instance_id: str | None) -> web.Response:
        text = await _body_text(request)
        try:
            value = json.loads(text) if text.strip() else None
        except ValueError as exc:
            return _invalid_json(exc)
        # The engine checks the function name, then the id, with the host's texts (ValueError -> 400).
        input_text = None if value is None else to_json(value)
        new_id = await self._engine.start_new(name, instance_id, input_text)
        return await self._started(request, new_id)

    async def _started(self, request: web.Request, instance_id: str) -> web.Response:
        """The answer to a start or restart: check-status, or the wait when both `timeout` and
        `pollingInterval` are given."""
        query = Query(request)
        timeout, interval = query.seconds("timeout"), query.seconds("pollingInterval")
        if timeout is None or interval is None:
            return self._check_status(request, instance_id)
        if interval > timeout:
            raise ValueError(f"Total timeout {timeout:g} should be bigger than retry timeout {interval:g}")
        state = await self._engine.wait_for_completion(instance_id, timeout)
        if state is None or state.runtime_status not in _TERMINAL:
            return self._check_status(request, instance_id)
        if state.runtime_status is RuntimeStatus.Completed:
            return _json(200, parse_json_or_raw(state.output))
        return await self._status(request, instance_id, fail_with_500=False)

    def _check_status(self, request: web.Request, instance_id: str) -> web.Response:
        payload = check_status_payload(self._public_base_url(request), instance_id, self._engine.hub_name,
                                       self._system_key)
        return _json(202, payload, {"Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    # -- instances

    async def _instances(self, request: web.Request, instance_id: str | None,
                         operation: str | None) -> web.Response:
        method = request.method
        if instance_id is None:
            if method == "GET":
                return await self._list(request)
            return await self._purge_by_filter(request) if method == "DELETE" else _empty(404)
        if operation is None:
            if method == "GET":
                return await self._status(request, instance_id)
            return await self._purge(instance_id) if method == "DELETE" else _empty(404)
        if method != "POST":
            return _empty(404)
        if operation.lower() == "restart":
            return await self._restart(request, instance_id)
        if operation.lower() in self._operations:
            return await self._operate(request, instance_id, operation.lower())
        return _empty(404)

    async def _status(self, request: web.Request, instance_id: str,
                      fail_with_500: bool | None = None) -> web.Response:
        query = Query(request)
        state = await self._engine.get_instance(instance_id)
        if state is None:
            return _empty(404)
        history = None
        if query.flag("showHistory", False) and state.runtime_status is not RuntimeStatus.Pending:
            history = await self._engine.get_history(instance_id)
        payload = render_status(state, history, show_history_output=query.flag("showHistoryOutput", False),
                                show_input=query.flag("showInput", True))
        if not state.runtime_status.is_terminal:  # Running, Pending, ContinuedAsNew, Suspended
            return _json(202, payload, {"Location": str(request.url), "Retry-After": "5"})
        if fail_with_500 is None:
            fail_with_500 = query.flag("returnInternalServerErrorOnFailure", False)
        failed = state.runtime_status is RuntimeStatus.Failed and fail_with_500
        return _json(500 if failed else 200, payload)

    async def _list(self, request: web.Request) -> web.Response:
        query = Query(request)
        page_size = query.integer("top")
        condition = InstanceQuery(
            created_from=query.time("createdTimeFrom"), created_to=query.time("createdTimeTo"),
            statuses=query.statuses("runtimeStatus"),
            instance_id_prefix=query.get("instanceIdPrefix") or None,
            top=page_size if page_size and page_size > 0 else DEFAULT_PAGE_SIZE,
            continuation=request.headers.get("x-ms-continuation-token"))
        states, token = await self._engine.query_instances(condition)
        show_input = query.flag("showInput", True)
        rows = [render_status(state, show_input=show_input) for state in states]
        return _json(200, rows, {"x-ms-continuation-token": token or ""})

    async def _purge(self, instance_id: str) -> web.Response:
        deleted = await self._engine.purge([instance_id])
        return _json(200, {"instancesDeleted": deleted}) if deleted else _empty(404)

    async def _purge_by_filter(self, request: web.Request) -> web.Response:
        query = Query(request)
        created_from = query.time("createdTimeFrom")
        if created_from is None:
            return _json(400, "Please provide value for 'createdTimeFrom' parameter.")
        asked = query.statuses("runtimeStatus")
        # the Azure Storage provider purges only finished instances, whatever statuses are asked for
        statuses = [s for s in (asked or RuntimeStatus) if s in _TERMINAL]
        if not statuses:
            return _empty(404)
        condition = InstanceQuery(created_from=created_from,
                                  created_to=query.time("createdTimeTo") or self._engine.now(),
                                  statuses=statuses)
        states, _ = await self._engine.query_instances(condition)
        deleted = await self._engine.purge([state.instance_id for state in states]) if states else 0
        return _json(200, {"instancesDeleted": deleted}) if deleted else _empty(404)

    async def _operate(self, request: web.Request, instance_id: str, operation: str) -> web.Response:
        """terminate/suspend/resume/rewind: 404 and 410 are decided here, as the host's handler does; what the
        engine refuses beyond that (suspend twice, resume a running one, rewind a running one) it raises as
        RuntimeError, answered 500."""
        action, gone = self._operations[operation]
        state = await self._engine.get_instance(instance_id)
        if state is None:
            return _empty(404)
        if state.runtime_status in gone:
            return _empty(410)
        await action(instance_id, Query(request).get("reason"))
        return _empty(202)

    async def _restart(self, request: web.Request, instance_id: str) -> web.Response:
        """On the RPC base the SDK expects 404 and a JSON-string id (§6.5); the public base answers as
        the host does."""
        if await self._engine.get_instance(instance_id) is None:
            if self._rpc:
                return _empty(404)
            body = _exception_body("InstanceId does not match a valid orchestration instance.",
                                   f"An orchestrastion with the instanceId {instance_id} was not found.",
                                   "System.ArgumentException", None)
            return _json(400, body)
        with_new_id = Query(request).flag("restartWithNewInstanceId", True)
        new_id = await self._engine.restart(instance_id, with_new_id)
        return _json(202, new_id) if self._rpc else await self._started(request, new_id)

    async def _raise_event(self, request: web.Request, instance_id: str, event_name: str) -> web.Response:
        state = await self._engine.get_instance(instance_id)
        if state is None:
            return _empty(404)
        if state.runtime_status in _TERMINAL:
            return _empty(410)
        if not _is_json_request(request):
            return _message(400, "Only application/json request content is supported")
        text = await _body_text(request)
        try:
            # EventRaised.Input is the compact JSON of the parsed body: the Python client's body is a JSON
            # string holding JSON text, so the orchestrator receives that text as a str (§0, SDK issue #295).
            # A body without any JSON (empty) is no null event: JToken.Load throws, "Invalid JSON content".
            input_text = to_json(json.loads(text)) if text.strip() else _no_json_token(text)
        except ValueError as exc:
            return _invalid_json(exc)
        await self._engine.raise_event(instance_id, event_name, input_text)
        return _empty(202)

    # -- entities

    async def _entities(self, request: web.Request, name: str | None, key: str | None) -> web.Response:
        try:
            if request.method == "GET":
                if key:
                    return await self._read_entity(name or "", key)
                return await self._list_entities(request, name)
            if request.method in ("POST", "DELETE"):
                return await self._signal_entity(request, name, key or "")
            return _empty(404)
        except (ValueError, UnknownOrchestratorError) as exc:  # the host answers ArgumentException here with
            return _message(400, str(exc))                     # the bare message

    async def _read_entity(self, name: str, key: str) -> web.Response:
        state = await self._engine.read_entity(name.lower(), "" if key == "$" else key)
        return _empty(404) if state is None else _json(200, parse_json_or_raw(state))

    async def _list_entities(self, request: web.Request, name: str | None) -> web.Response:
        query = Query(request)
        page_size = query.integer("top")
        condition = InstanceQuery(instance_id_prefix=f"@{name.lower()}@" if name else "@",
                                  top=page_size if page_size and page_size > 0 else DEFAULT_PAGE_SIZE,
                                  continuation=request.headers.get("x-ms-continuation-token"))
        states, token = await self._engine.query_instances(condition)
        earliest, latest = query.time("lastOperationTimeFrom"), query.time("lastOperationTimeTo")
        fetch_state = query.flag("fetchState", False)
        rows = [_entity_row(state, fetch_state) for state in states
                if state.output is not None  # no state: deleted, or never existed
                and (earliest is None or state.last_updated_time >= earliest)
                and (latest is None or state.last_updated_time <= latest)]
        return _json(200, rows, {"x-ms-continuation-token": token or ""})

    async def _signal_entity(self, request: web.Request, name: str | None, key: str) -> web.Response:
        if not name:
            raise ValueError("Invalid entity id: entity name must not be a null or empty string. "
                             "(Parameter 'entityName')")
        operation = "delete" if request.method == "DELETE" else (Query(request).get("op") or "")
        text = await _body_text(request)
        input_text = None
        if text:  # no body: a signal without input
            try:
                value = json.loads(text) if _is_json_request(request) else text
            except ValueError as exc:
                return _message(400, f"Could not parse JSON content: {exc}")
            input_text = to_json(value)
        await self._engine.signal_entity(name.lower(), key, operation, input_text)
        return _empty(202)


def _entity_row(state: InstanceState, fetch_state: bool) -> dict[str, Any]:
    """A `DurableEntityStatus`; entity instance ids are `@name@key`."""
    name, _, key = state.instance_id[1:].partition("@")
    return {"entityId": {"name": name, "key": key}, "lastOperationTime": format_time(state.last_updated_time),
            "state": parse_json_or_raw(state.output) if fetch_state else None}
