"""The aiohttp application: admin routes, the Durable webhooks, then HTTP-triggered functions.

Matching follows the host: admin routes first, then function routes in host order (first match
wins, a wrong method just continues), `/` is the home page, anything else is 404 with an empty body.
Both match Kestrel's Request.Path: the decoded path with `.` and `..` segments removed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import hdrs, web

from funcemu.app import FunctionSpec
from funcemu.http.convert import build_http_request, check_response, render_http_response
from funcemu.http.keys import LEVELS
from funcemu.http.routes import FunctionRoute, RouteTable, RouteTemplate, join_route
from funcemu.http.throttle import ThrottleOptions, is_admin_request, throttle_middleware
from funcemu.invoke import HOST_API_REASON

if TYPE_CHECKING:
    from funcemu.host import Host

log = logging.getLogger("funcemu.http")
DEFAULT_BODY_LIMIT = 104857600  # Kestrel's MaxRequestBodySize as set by Core Tools (100 MiB)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CORS_ALLOW_HEADERS = "Access-Control-Allow-Headers"


def body_limit() -> int:
    raw = os.environ.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT")
    return int(raw) if raw and raw.isdigit() and int(raw) > 0 else DEFAULT_BODY_LIMIT


def build_route_table(functions: list[FunctionSpec], prefix: str) -> RouteTable:
    table = RouteTable(FunctionRoute(spec.name, RouteTemplate(join_route(prefix, spec.route)),
                                     set(spec.methods) if spec.methods else None)
                       for spec in functions if spec.is_http)
    for route in table.routes:
        methods = ",".join(sorted(m.lower() for m in route.methods)) if route.methods else "all"
        log.info("Mapped function route '%s' [%s] to '%s'", route.template.template, methods, route.name)
    return table


class FunctionDispatcher:
    """The catch-all handler: resolves a function route and runs the function."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.table = build_route_table(host.indexed.functions, host.config.route_prefix)
        self.body_limit = body_limit()

    def serves_home(self, request: web.Request) -> bool:
        """`GET /` that no function route takes: the home page, answered before the throttle (§4.1)."""
        return (request_path(request) == "/" and request.method in ("GET", "HEAD")
                and self.table.resolve(request.method, "") is None)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request_path(request)
        admin = self.host.admin.resolve(request.method, path)
        if admin is not None:
            handler, values = admin
            return await handler(request, values)
        found = self.table.resolve(request.method, path[1:])
        if found is None:
            if self.serves_home(request):
                return await self.host.admin.home(request)
            return web.Response(status=404)
        route, values = found
        spec = self.host.indexed.get(route.name)
        assert spec is not None  # the table is built from the indexed functions
        if spec.disabled and not self.host.authorized(request, "admin", None):
            # 404 unless the caller has admin level (§4.3); without --enable-auth every caller has it (§4.4)
            return web.Response(status=404)
        if not self.host.authorized(request, spec.auth_level, spec.name):
            return web.Response(status=401)
        return await self.run(request, spec, values)

    async def run(self, request: web.Request, spec: FunctionSpec, values: dict[str, str]) -> web.StreamResponse:
        if (request.content_length or 0) > self.body_limit:
            return web.Response(status=413)  # as Kestrel: refused before the function runs, empty body
        body = await request.read() if request.content_length else b""
        url = request_url(request.scheme, request.headers.get(hdrs.HOST, request.host), request.raw_path)
        req = build_http_request(request.method, url, list(request.headers.items()),
                                 list(request.query.items()), values, body)
        metadata: dict[str, Any] = {**values, "Query": dict(request.query), "Headers": dict(request.headers)}
        result = await self.host.call(spec, spec.trigger["name"], req, metadata, reason=HOST_API_REASON,
                                      convert=lambda done: self.render(spec, request.method, done.return_value,
                                                                       done.outputs))
        if not result.ok:
            return web.Response(status=500)
        response: web.StreamResponse = result.converted
        return response

    @staticmethod
    def render(spec: FunctionSpec, method: str, return_value: Any, outputs: dict[str, Any]) -> web.StreamResponse:
        """The HTTP output binding's value as a response; TypeError/ValueError fail the invocation
        (including a response Kestrel refuses to send)."""
        http_out = next((b for b in spec.output_bindings if b["type"] == "http"), None)
        if http_out is None:
            return web.Response(status=200)
        value = return_value if http_out["name"] == "$return" else outputs.get(http_out["name"])
        if value is None and http_out["name"] != "$return":
            return web.Response(status=200)
        rendered = render_http_response(value)
        check_response(rendered, method)
        response = web.Response(status=rendered.status, body=rendered.body)
        for name, header in rendered.headers:
            if name.lower() == "set-cookie":
                response.headers.add(name, header)
            elif name not in response.headers:
                response.headers[name] = header
        return response


def cors_middleware(origins: list[str], credentials: bool) -> Any:
    """ASP.NET's CORS policy as Core Tools configures it (any header, any method), before any routing.

    As ASP.NET's CorsMiddleware, every preflight (OPTIONS with Access-Control-Request-Method) is answered
    204 here, with the CORS headers only when the origin is allowed.
    """
    allow_any = "*" in origins

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and (allow_any or origin in origins)
        requested_method = request.headers.get("Access-Control-Request-Method")
        if request.method == "OPTIONS" and requested_method:
            response: web.StreamResponse = web.Response(status=204)
            if allowed:
                response.headers["Access-Control-Allow-Methods"] = requested_method
                if "Access-Control-Request-Headers" in request.headers:
                    response.headers[CORS_ALLOW_HEADERS] = request.headers["Access-Control-Request-Headers"]
        else:
            response = await handler(request)
        if allowed and origin is not None:
            response.headers["Access-Control-Allow-Origin"] = "*" if allow_any and not credentials else origin
            if credentials:
                response.headers["Access-Control-Allow-Credentials"] = "true"
            if not allow_any:
                response.headers["Vary"] = "Origin"
        return response

    return middleware


def custom_headers_middleware(headers: dict[str, str]) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        for name, value in headers.items():
            response.headers.setdefault(name, str(value))
        return response

    return middleware


def admin_auth_middleware(host: Host) -> Any:
    """With `--enable-auth`, admin routes need the master key and the durable webhooks a system key."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request_path(request).lower()
        if path.startswith("/admin/") and path not in ("/admin/host/ping", "/admin/host/ping/"):
            if not host.authorized(request, "admin", None):
                return web.Response(status=401)
        elif path.startswith("/runtime/webhooks/") and not host.authorized(request, "system", None):
            return web.Response(status=401)
        return await handler(request)

    return middleware


def build_application(host: Host, durable_app: web.Application | None) -> web.Application:
    dispatcher = FunctionDispatcher(host)
    middlewares = []
    if host.config.cors_origins:
        middlewares.append(cors_middleware(host.config.cors_origins, host.config.cors_credentials))
    custom = host.config.host_json.get("extensions.http.customHeaders")
    if isinstance(custom, dict) and custom:
        middlewares.append(custom_headers_middleware(custom))
    if host.keys is not None:
        middlewares.append(admin_auth_middleware(host))
    throttle = ThrottleOptions.from_host_json(host.config.host_json)
    if throttle.enabled:
        middlewares.append(throttle_middleware(throttle, lambda r: is_admin_request(r) or dispatcher.serves_home(r)))
    app = web.Application(client_max_size=body_limit(), middlewares=middlewares)
    if durable_app is not None:
        app.add_subapp("/runtime/webhooks/durabletask/", durable_app)
    if host.extra_routes:
        app.add_routes(host.extra_routes)
    if any(spec.trigger_type == "blobTrigger" for spec in host.indexed.functions):
        app.router.add_post("/runtime/webhooks/blobs", lambda request: blob_webhook(host, request))
    app.router.add_route("*", "/{tail:.*}", dispatcher.handle)
    return app


async def blob_webhook(host: Host, request: web.Request) -> web.StreamResponse:
    """The blobs extension's Event Grid endpoint (§5.3); the blob triggers start after this app is built."""
    from funcemu.triggers.blob import event_grid_webhook  # lazily: the Storage SDKs take ~1 s to import
    return await event_grid_webhook(host, request)


def level_required(auth_level: str) -> int:
    return LEVELS.get(auth_level.lower(), LEVELS["function"])


def request_path(request: web.Request) -> str:
    """Kestrel's Request.Path for routing: the decoded path without `.`/`..` segments (§4.2)."""
    path = request.path
    return remove_dot_segments(path) if "/." in path else path


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path, as Kestrel's PathNormalizer: `/a/./b/../c` -> `/a/c`;
    `..` never climbs above the root; a final `.` or `..` leaves a trailing `/`."""
    segments = path.split("/")[1:]
    kept: list[str] = []
    for index, segment in enumerate(segments):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
            continue
        if index == len(segments) - 1:
            kept.append("")
    return "/" + "/".join(kept)


def request_url(scheme: str, host: str, raw_path: str) -> str:
    """`{scheme}://{Host}{Path}{QueryString}` (§3.7): ASP.NET's Request.Path is decoded, except for an
    encoded "/" (Kestrel keeps %2F so that path segments stay segments), and without `.`/`..` segments;
    the query string stays raw. An absolute-form target (`GET http://host:port/p?q`, as sent to a proxy)
    gives Path and QueryString from its path and query; the Host header stays the authority."""
    if not raw_path.startswith("/") and "://" in raw_path:
        rest = raw_path.split("://", 1)[1]
        target = rest[min(i for i in (rest.find("/"), rest.find("?"), len(rest)) if i >= 0):]
        raw_path = target if target.startswith("/") else "/" + target
    path, mark, query = raw_path.partition("?")
    decoded = "".join(part if re.fullmatch(r"%2[fF]", part) else unquote(part)
                      for part in re.split(r"(%2[fF])", path))
    if "/." in decoded:
        decoded = remove_dot_segments(decoded)
    return f"{scheme}://{host}{decoded}{mark}{query}"
