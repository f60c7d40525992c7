"""The host's own endpoints: the home page and `/admin/...` (status, ping, functions, invoke)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from funcemu import __version__
from funcemu.http.routes import FunctionRoute

if TYPE_CHECKING:
    from funcemu.host import Host

log = logging.getLogger("funcemu.admin")
HOST_VERSION = "4.1037.0"

HOME_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Your Azure Function App is up and running.</title></head>
<body style="font-family: sans-serif; margin: 3em">
<h1>Your Azure Function App is up and running.</h1>
<p>Azure Functions is an event-based serverless compute experience to accelerate your development.</p>
<p><small>Served locally by funcemu {version}.</small></p>
</body></html>
"""


AdminHandler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]
AdminRoute = tuple[FunctionRoute, AdminHandler]


def _route(method: str, template: str, handler: AdminHandler) -> AdminRoute:
    """An ASP.NET route template, as the function routes (`*`: any method; GET also answers HEAD)."""
    methods = None if method == "*" else ({method, "HEAD"} if method == "GET" else {method})
    return FunctionRoute(template, template.lstrip("/"), methods), handler


def json_response(value: Any, status: int = 200) -> web.Response:
    """Compact JSON, as ASP.NET's serializer writes it (no spaces after `,` and `:`)."""
    return web.Response(status=status, body=json.dumps(value, separators=(",", ":")).encode(),
                        content_type="application/json", charset="utf-8")


class AdminApi:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.started = time.monotonic()
        self.background: set[asyncio.Task[Any]] = set()
        self._routes = [
            _route("GET", "/admin/host/status", self.status),
            _route("*", "/admin/host/ping", self.ping),
            _route("GET", "/admin/functions", self.list_functions),
            _route("GET", "/admin/functions/{name}", self.get_function),
            _route("GET", "/admin/functions/{name}/status", self.function_status),
            _route("POST", "/admin/functions/{name}", self.invoke),
        ]

    def resolve(self, method: str, path: str) -> tuple[AdminHandler, dict[str, str]] | None:
        """The admin route for `path` (Request.Path), if any: the dispatcher tries these before the
        function routes (§4.1). As MVC attribute routes, literals match ignoring case and one trailing
        `/` is allowed; a GET route also answers HEAD (as it did as an aiohttp route)."""
        if path[:7].lower() != "/admin/":
            return None
        for route, handler in self._routes:
            values = route.match(method, path[1:])
            if values is not None:
                return handler, values
        return None

    async def home(self, request: web.Request) -> web.StreamResponse:
        import os
        if os.environ.get("AzureWebJobsDisableHomepage", "").lower() == "true":
            return web.Response(status=204)
        # exactly `text/html` (§4.6): aiohttp would add "; charset=utf-8" to a text response
        return web.Response(body=HOME_PAGE.format(version=__version__).encode(), headers={"Content-Type": "text/html"})

    async def status(self, request: web.Request, values: dict[str, str]) -> web.Response:
        payload: dict[str, Any] = {
            "id": self.host.host_id, "state": self.host.state, "version": HOST_VERSION,
            "versionDetails": f"{HOST_VERSION} (funcemu {__version__})",
            "processUptime": int((time.monotonic() - self.started) * 1000),
            "functionAppContentEditingState": "Unknown",
        }
        bundle = self.host.config.host_json.get("extensionBundle")
        if isinstance(bundle, dict):
            payload["extensionBundle"] = {"id": bundle.get("id"), "version": bundle.get("version")}
        if self.host.indexed.errors:
            payload["errors"] = [f"{n}: {e}" for n, e in self.host.indexed.errors.items()]
        return json_response(payload)

    async def ping(self, request: web.Request, values: dict[str, str]) -> web.Response:
        return web.Response(status=200)

    def _metadata(self, request: web.Request, name: str) -> dict[str, Any] | None:
        spec = self.host.indexed.get(name)
        if spec is None:
            return None
        base = f"{request.scheme}://{request.headers.get('Host', request.host)}"
        meta: dict[str, Any] = {"name": spec.name, "script_root_path_href": f"{base}/admin/vfs/",
                                "href": f"{base}/admin/functions/{spec.name}",
                                "config": {"bindings": spec.bindings}, "language": "python",
                                "isDisabled": spec.disabled, "isDirect": False, "isProxy": False}
        if spec.is_http:
            meta["invoke_url_template"] = self.host.function_url(spec, base)
        return meta

    async def list_functions(self, request: web.Request, values: dict[str, str]) -> web.Response:
        return json_response([self._metadata(request, s.name) for s in self.host.indexed.functions])

    async def get_function(self, request: web.Request, values: dict[str, str]) -> web.Response:
        meta = self._metadata(request, values["name"])
        return json_response(meta) if meta else web.Response(status=404)

    async def function_status(self, request: web.Request, values: dict[str, str]) -> web.Response:
        name = values["name"]
        error = next((e for n, e in self.host.indexed.errors.items() if n.lower() == name.lower()), None)
        if error:
            return json_response({"errors": [error]})
        return json_response({}) if self.host.indexed.get(name) else web.Response(status=404)

    async def invoke(self, request: web.Request, values: dict[str, str]) -> web.Response:
        """`POST /admin/functions/{name}` with `{"input": "..."}`: 202 and a background run."""
        spec = self.host.indexed.get(values["name"])
        try:
            body = await request.json(loads=json.loads) if request.can_read_body else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.Response(status=400)
        if spec is None:
            return web.Response(status=404)
        raw = body.get("input")
        task = asyncio.create_task(self.host.invoke_by_admin(spec, None if raw is None else str(raw)))
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return web.Response(status=202)
