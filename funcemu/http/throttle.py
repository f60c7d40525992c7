"""host.json `extensions.http.maxConcurrentRequests` / `maxOutstandingRequests` (§4.5).

As the host's HttpThrottleMiddleware and its request queue: with either limit set (-1 = unbounded, the
default), every request except the home page and `/admin/...` is counted. `maxConcurrentRequests` caps
the requests being processed (the rest wait in order); `maxOutstandingRequests` caps processing plus
waiting, and a request beyond it is answered at once with `429`, header `X-FUNCTION-SCALEOUT: 1` and an
empty body. `dynamicThrottlesEnabled` checks App Service performance counters, which a local host does
not have, so it never rejects anything here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from funcemu.config import ConfigError, HostJson

log = logging.getLogger("funcemu.http.throttle")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNBOUNDED = -1


@dataclass(frozen=True)
class ThrottleOptions:
    max_concurrent: int = UNBOUNDED
    max_outstanding: int = UNBOUNDED

    @property
    def enabled(self) -> bool:
        return self.max_concurrent != UNBOUNDED or self.max_outstanding != UNBOUNDED

    @classmethod
    def from_host_json(cls, host_json: HostJson) -> ThrottleOptions:
        return cls(_limit(host_json, "maxConcurrentRequests"), _limit(host_json, "maxOutstandingRequests"))


def _limit(host_json: HostJson, name: str) -> int:
    """-1 or a positive integer (the host's dataflow block refuses 0 and other negatives)."""
    raw = host_json.get(f"extensions.http.{name}", UNBOUNDED)
    try:
        value = int(raw) if not isinstance(raw, (bool, float)) else 0
    except (TypeError, ValueError):
        value = 0
    if value != UNBOUNDED and value < 1:
        raise ConfigError(host_json.path, f"{raw!r} must be -1 (unbounded) or a positive integer",
                          key=f"extensions.http.{name}")
    return value


def is_admin_request(request: web.Request) -> bool:
    path = request.path.lower()
    return path == "/admin" or path.startswith("/admin/")


def throttle_middleware(options: ThrottleOptions, exempt: Callable[[web.Request], bool]) -> Any:
    """The throttle; `exempt(request)` is true for requests answered before it (home page, admin)."""
    slots = asyncio.Semaphore(options.max_concurrent) if options.max_concurrent != UNBOUNDED else None
    outstanding = 0

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal outstanding
        if exempt(request):
            return await handler(request)
        if options.max_outstanding != UNBOUNDED and outstanding >= options.max_outstanding:
            log.info("Http request queue limit of %d has been exceeded.", options.max_outstanding)
            return web.Response(status=429, headers={"X-FUNCTION-SCALEOUT": "1"})
        outstanding += 1
        try:
            if slots is None:
                return await handler(request)
            async with slots:
                return await handler(request)
        finally:
            outstanding -= 1

    return middleware
