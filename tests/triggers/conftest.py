"""Azurite and funcemu host processes for the trigger and storage-binding tests.

`storage` (session) starts Azurite from the npm package, in memory on ports the OS picks, and yields its
connection string; tests are skipped with the reason when the package is missing. `start_app` writes a
function app (function_app.py, host.json, local.settings.json) into a temp folder and runs
`python -m funcemu start --port 0 --storage memory` on it, with an environment from which the test
session's storage settings are removed, so local.settings.json decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from trigger_support import AppHost, launch

from funcemu.testing import azurite as azurite_process

EXTRA_INSTALLS = (Path("/tmp/az"),)


def _azurite_executable(root: Path) -> Path | None:
    found = azurite_process.find_executable(root)
    if found is not None:
        return found
    for folder in EXTRA_INSTALLS:
        candidate = folder / "node_modules" / ".bin" / "azurite"
        if candidate.exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def storage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The connection string of an Azurite started for this session."""
    executable = _azurite_executable(request.config.rootpath)
    if executable is None:
        pytest.skip("the azurite npm package is not installed: run `npm install` in the repo root")
    found = azurite_process.start(executable, tmp_path_factory.mktemp("azurite"), timeout=60)
    try:
        yield found.connection_string
    finally:
        found.stop()


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., AppHost]]:
    """`start_app(code, settings=..., host_json=..., wait=True)` -> a running AppHost (stopped afterwards)."""
    hosts: list[AppHost] = []

    def start(code: str, *, name: str = "app", **options: Any) -> AppHost:
        host = launch(tmp_path / name, code, wait=False, **{k: v for k, v in options.items() if k != "wait"})
        hosts.append(host)
        return host.wait_ready() if options.get("wait", True) else host

    yield start
    for host in hosts:
        host.stop()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Queue/container names unique per test (Azurite is shared by the session)."""
    def make(prefix: str) -> str:
        return f"{prefix}{uuid.uuid4().hex[:10]}"
    return make
