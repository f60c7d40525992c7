"""HTTP throttles end to end (docs §4.5, §4.1): host.json `extensions.http.maxConcurrentRequests` and
`maxOutstandingRequests`, set here through `AzureFunctionsJobHost__extensions__http__*` variables."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from host_support import APPS
from support import HostProcess, Reply

APP = APPS / "throttle_app"
PREFIX = "AzureFunctionsJobHost__extensions__http__"


def limits(concurrent: int, outstanding: int) -> dict[str, str]:
    return {PREFIX + "maxConcurrentRequests": str(concurrent), PREFIX + "maxOutstandingRequests": str(outstanding)}


def parallel(host: HostProcess, paths: list[str], stagger: float = 0.0) -> list[Reply]:
    def call(index: int) -> Reply:
        time.sleep(index * stagger)
        return host.call("GET", paths[index])
    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(call, range(len(paths))))


def test_requests_beyond_the_outstanding_limit_get_429_with_the_scale_out_header() -> None:
    with HostProcess(APP, env=limits(1, 1)) as host:
        replies = parallel(host, ["/api/slow"] * 4)
        assert sorted(r.status for r in replies) == [200, 429, 429, 429]
        for reply in replies:
            if reply.status == 429:
                assert reply.headers["x-function-scaleout"] == "1" and reply.body == b""
        assert host.call("GET", "/api/slow?seconds=0").status == 200  # the slot is free again


def test_admin_routes_and_the_home_page_are_not_throttled() -> None:
    with HostProcess(APP, env=limits(1, 1)) as host:
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(host.call, "GET", "/api/slow")
            time.sleep(0.5)
            assert host.call("GET", "/admin/host/status").status == 200
            assert host.call("GET", "/").status == 200
            assert host.call("GET", "/api/nothing-here").status == 429   # every other request counts
            assert busy.result().status == 200


def test_the_concurrency_limit_queues_requests_without_rejecting_them() -> None:
    with HostProcess(APP, env={PREFIX + "maxConcurrentRequests": "1"}) as host:
        started = time.monotonic()
        replies = parallel(host, ["/api/slow?seconds=0.7"] * 3)
        assert [r.status for r in replies] == [200, 200, 200]
        assert time.monotonic() - started >= 2.0   # one at a time


def test_without_limits_nothing_is_throttled() -> None:
    with HostProcess(APP) as host:
        started = time.monotonic()
        replies = parallel(host, ["/api/slow?seconds=1"] * 4)
        assert [r.status for r in replies] == [200] * 4
        assert time.monotonic() - started < 3.5
