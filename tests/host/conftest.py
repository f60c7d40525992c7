"""Host end-to-end tests (tests/host/test_e2e_*.py): a failing test gets the log of the host it used."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from support import HostProcess

HOST_LOG = pytest.StashKey[HostProcess]()
HOST_FIXTURES = ("host", "filtered")  # the module-scoped hosts of the test_e2e_* modules
LOG_TAIL = 6000


@pytest.fixture(autouse=True)
def _remember_host(request: pytest.FixtureRequest) -> None:
    name = next((n for n in HOST_FIXTURES if n in request.fixturenames), None)
    if name is not None:
        request.node.stash[HOST_LOG] = request.getfixturevalue(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    host = item.stash.get(HOST_LOG, None)
    if report.failed and host is not None:
        report.sections.append(("funcemu host log (tail)", host.log[-LOG_TAIL:]))
    return report
