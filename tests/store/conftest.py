"""Azurite for the store tests.

`azurite` (session) uses, in order: the connection string in FUNCEMU_TEST_AZURITE_CONNECTION, an Azurite
already listening on 127.0.0.1:10000-10002, or the npm package started in memory on ports the OS picks
(node_modules/.bin/azurite in the repo or a folder above, /tmp/az, `azurite` on PATH, then
`npx --no-install azurite`). It sets FUNCEMU_TEST_AZURITE_CONNECTION for the session, so the
conformance suite's `azure` parameter runs, and stops what it started. Without Azurite the tests that
need it are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from funcemu.testing import azurite as azurite_process
from funcemu.testing.azurite import Azurite

if TYPE_CHECKING:
    from funcemu.durable.store.azure import AzureStore

ENV = "FUNCEMU_TEST_AZURITE_CONNECTION"
EXTRA_INSTALLS = (Path("/tmp/az"),)
T = TypeVar("T")


def _executable(root: Path) -> list[str] | None:
    found = azurite_process.find_executable(root)
    if found is not None:
        return [str(found)]
    for folder in EXTRA_INSTALLS:
        candidate = folder / "node_modules" / ".bin" / "azurite"
        if candidate.exists():
            return [str(candidate)]
    npx = shutil.which("npx")
    if npx and _npx_has_azurite(npx, root):
        return [npx, "--no-install", "azurite"]
    return None


def _npx_has_azurite(npx: str, root: Path) -> bool:
    try:
        done = subprocess.run([npx, "--no-install", "azurite", "--version"], cwd=root, timeout=30,
                              capture_output=True, text=True)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _start(command: list[str], workspace: Path) -> Azurite:
    """Like azurite_process.start, for a command that may be more than one word (npx)."""
    if len(command) == 1:
        return azurite_process.start(Path(command[0]), workspace)
    wrapper = workspace / "azurite"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(f"'{part}'" for part in command) + ' "$@"\n')
    wrapper.chmod(0o755)
    return azurite_process.start(wrapper, workspace)


class _Configured(Azurite):
    """An Azurite (or account) given by its connection string; nothing to stop."""

    def __init__(self, connection_string: str) -> None:
        parts = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
        super().__init__(parts.get("BlobEndpoint", ""), parts.get("QueueEndpoint", ""),
                         parts.get("TableEndpoint", ""))
        self._connection_string = connection_string

    @property
    def connection_string(self) -> str:
        return self._connection_string


@pytest.fixture(scope="session")
def azurite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """The session's Azurite (see the module docstring); `.connection_string` connects to it."""
    configured = os.environ.get(ENV)
    if configured:
        yield _Configured(configured)
        return
    found = azurite_process.find_running()
    if found is None:
        command = _executable(request.config.rootpath)
        if command is None:
            pytest.skip("Azurite is not running on 127.0.0.1:10000-10002 and its npm package was not found "
                        "(run `npm install` in the repo root, or set FUNCEMU_TEST_AZURITE_CONNECTION)")
        found = _start(command, tmp_path_factory.mktemp("azurite"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV, found.connection_string)
        try:
            yield found
        finally:
            found.stop()


@pytest.fixture(autouse=True)
def _azurite_for_azure_params(request: pytest.FixtureRequest) -> None:
    """Start Azurite before a test parametrized with store="azure" (the conformance suite) reads ENV."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("store") == "azure":
        request.getfixturevalue("azurite")


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    """Run coroutines on one event loop per test (the Azure clients bind to their loop)."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


@pytest.fixture
def hub_name() -> str:
    return "t" + uuid.uuid4().hex[:16]


@pytest.fixture
def azure_store(azurite: Azurite, hub_name: str,
                run: Callable[[Awaitable[Any]], Any]) -> Iterator[AzureStore]:
    """An open AzureStore on a fresh hub, deleted afterwards."""
    from funcemu.durable.store.azure import AzureStore

    store = AzureStore(azurite.connection_string, hub_name)
    run(store.open())
    try:
        yield store
    finally:
        run(store.delete_task_hub())
        run(store.close())
