"""Shared test setup. The funcemu fixtures (funcemu, durable_client, clock, azurite) come from the
plugin that the installed package registers (entry point `pytest11: funcemu`)."""

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Tests that load an app in process (replay, config) push its settings into os.environ, as the
    host does; undo that after each test so no later test depends on those leftovers. Session
    fixtures (such as Azurite's connection) are set up before this snapshot and are kept."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


LOG_TAIL = 6000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    """A failing test's report ends with the log of every funcemu host process it used."""
    from support import HostProcess

    report = yield
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, HostProcess):
                report.sections.append((f"funcemu host log ({name}, tail)", value.log[-LOG_TAIL:]))
    return report
