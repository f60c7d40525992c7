"""Fixtures of the durable end-to-end tests: one host of the durable test app per module and store."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from durable_support import STORES, launch
from support import HostProcess

HOST_LOG = pytest.StashKey[HostProcess]()
LOG_TAIL = 6000


@pytest.fixture(scope="module", params=STORES)
def durable_host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[HostProcess]:
    """`funcemu start` for the durable test app on the memory or the sqlite store, shared by one module."""
    host = launch(tmp_path_factory.mktemp(f"data-{request.param}"), request.param)
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture(autouse=True)
def _remember_host(request: pytest.FixtureRequest) -> None:
    if "durable_host" in request.fixturenames:
        request.node.stash[HOST_LOG] = request.getfixturevalue("durable_host")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    host = item.stash.get(HOST_LOG, None)
    if report.failed and host is not None:
        report.sections.append(("funcemu host log (tail)", host.log[-LOG_TAIL:]))
    return report
