"""The HTTP throttle's options and counting (funcemu/http/throttle.py, docs §4.5), without a host process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from funcemu.config import ConfigError, HostJson
from funcemu.http.throttle import ThrottleOptions, is_admin_request, throttle_middleware


def options(http: dict[str, Any], environ: dict[str, str] | None = None) -> ThrottleOptions:
    host_json = HostJson({"version": "2.0", "extensions": {"http": http}}, Path("host.json"), environ or {})
    return ThrottleOptions.from_host_json(host_json)


def test_unbounded_by_default_and_minus_one_is_unbounded() -> None:
    assert not options({}).enabled
    assert not options({"maxConcurrentRequests": -1, "maxOutstandingRequests": -1}).enabled
    assert options({"maxOutstandingRequests": 3}) == ThrottleOptions(-1, 3)


def test_an_environment_override_is_read() -> None:
    found = options({}, {"AzureFunctionsJobHost__extensions__http__maxConcurrentRequests": "2"})
    assert found == ThrottleOptions(2, -1) and found.enabled


@pytest.mark.parametrize("value", [0, -2, "many", True, 1.5])
def test_other_values_are_configuration_errors(value: Any) -> None:
    with pytest.raises(ConfigError, match="maxConcurrentRequests"):
        options({"maxConcurrentRequests": value})


def test_admin_requests_are_recognized_by_their_first_segment() -> None:
    assert is_admin_request(make_mocked_request("GET", "/admin/host/status"))
    assert is_admin_request(make_mocked_request("GET", "/Admin"))
    assert not is_admin_request(make_mocked_request("GET", "/administration"))
    assert not is_admin_request(make_mocked_request("POST", "/runtime/webhooks/blobs"))


def test_outstanding_counts_running_and_waiting_requests() -> None:
    async def scenario() -> list[int]:
        release = asyncio.Event()
        running = 0
        peak = 0

        async def handler(request: web.Request) -> web.StreamResponse:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1
            return web.Response(text="ok")

        middleware = throttle_middleware(ThrottleOptions(2, 3), lambda r: False)
        calls = [asyncio.create_task(middleware(make_mocked_request("GET", "/api/x"), handler)) for _ in range(5)]
        await asyncio.sleep(0.05)
        release.set()
        replies = await asyncio.gather(*calls)
        assert peak == 2
        rejected = [r for r in replies if r.status == 429]
        assert all(r.headers["X-FUNCTION-SCALEOUT"] == "1" for r in rejected)
        return sorted(r.status for r in replies)

    assert asyncio.run(scenario()) == [200, 200, 200, 429, 429]
