"""Azurite for the tests that keep a task hub in Azure Storage (tests/store, the azure runs of tests/durable).

`session_azurite()` gives the session one Azurite, in this order: the connection string in
FUNCEMU_TEST_AZURITE_CONNECTION, an Azurite already listening on 127.0.0.1:10000-10002, or the npm
package started in memory on ports the OS picks (node_modules/.bin/azurite in the repo or a folder above,
/tmp/az, `azurite` on PATH, then `npx --no-install azurite`). It sets FUNCEMU_TEST_AZURITE_CONNECTION
while it runs, so a second caller in the same session reuses it, and stops only what it started.

`PersistentAzurite` is an Azurite of one test that keeps its data in a folder (`--location`) and can be
stopped and started again on the same ports, for the storage-outage tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from funcemu.testing import azurite as azurite_process
from funcemu.testing.azurite import LISTENING, Azurite
from funcemu.testing.process import ProcessExited, WatchedProcess

ENV = "FUNCEMU_TEST_AZURITE_CONNECTION"
EXTRA_INSTALLS = (Path("/tmp/az"),)
PERSISTENT_FLAGS = ("--disableTelemetry", "--skipApiVersionCheck", "--silent")
SERVICES = ("blob", "queue", "table")


def azurite_command(root: Path) -> list[str] | None:
    """How to run the npm package from `root` (see the module docstring), or None."""
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


def _executable(command: list[str], workspace: Path) -> Path:
    """One executable for `command`: a wrapper script when it is more than one word (npx)."""
    if len(command) == 1:
        return Path(command[0])
    wrapper = workspace / "azurite"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(f"'{part}'" for part in command) + ' "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


class Configured(Azurite):
    """An Azurite (or account) given by its connection string; nothing to stop. Its endpoints are
    without the account path, as for an Azurite started here (`http://127.0.0.1:10000`)."""

    def __init__(self, connection_string: str) -> None:
        parts = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
        account = "/" + parts.get("AccountName", "")
        blob, queue, table = (parts.get(f"{name}Endpoint", "").rstrip("/").removesuffix(account)
                              for name in ("Blob", "Queue", "Table"))
        super().__init__(blob, queue, table)
        self._connection_string = connection_string

    @property
    def connection_string(self) -> str:
        return self._connection_string


@contextmanager
def session_azurite(root: Path, factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """The session's Azurite (see the module docstring); skips the test when there is none."""
    configured = os.environ.get(ENV)
    if configured:
        yield Configured(configured)
        return
    found = azurite_process.find_running()
    if found is None:
        command = azurite_command(root)
        if command is None:
            pytest.skip("Azurite is not running on 127.0.0.1:10000-10002 and its npm package was not found "
                        "(run `npm install` in the repo root, or set FUNCEMU_TEST_AZURITE_CONNECTION)")
        workspace = factory.mktemp("azurite")
        found = azurite_process.start(_executable(command, workspace), workspace)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV, found.connection_string)
        try:
            yield found
        finally:
            found.stop()


def delete_hub(connection_string: str, hub_name: str) -> None:
    """Delete every table, queue and container of a task hub (a fresh hub for the next host)."""
    from funcemu.durable.store.azure import AzureStore

    async def delete() -> None:
        store = AzureStore(connection_string, hub_name)
        await store.open()
        try:
            await store.delete_task_hub()
        finally:
            await store.close()

    asyncio.run(delete())


class PersistentAzurite:
    """Azurite keeping its data in `location`; `stop()` then `start()` serves the same data on the same
    ports (the first start lets the OS pick them)."""

    def __init__(self, command: list[str], location: Path) -> None:
        self.location = location
        self._executable = _executable(command, location.parent)
        self._ports = dict.fromkeys(SERVICES, 0)
        self.process: WatchedProcess | None = None

    @property
    def azurite(self) -> Azurite:
        blob, queue, table = (f"http://127.0.0.1:{self._ports[name]}" for name in SERVICES)
        return Azurite(blob, queue, table)

    @property
    def connection_string(self) -> str:
        return self.azurite.connection_string

    def start(self, timeout: float = 60) -> PersistentAzurite:
        ports = [arg for name in SERVICES for arg in (f"--{name}Host", "127.0.0.1", f"--{name}Port",
                                                      str(self._ports[name]))]
        command = [str(self._executable), "--location", str(self.location), *PERSISTENT_FLAGS, *ports]
        self.process = WatchedProcess(command, cwd=self.location)
        try:
            found = self.process.wait_for(LISTENING, timeout, count=3)
        except (ProcessExited, TimeoutError) as error:
            self.process.stop()
            raise RuntimeError(f"Azurite did not start: {error}\n{self.process.output()}") from None
        for match in found:
            self._ports[match.group(1).lower()] = int(match.group(2).rstrip("/").rsplit(":", 1)[1])
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` and wait for the exit (SIGKILL after 10 s)."""
        if self.process is None or not self.process.is_running():
            return
        if sig != signal.SIGTERM:
            os.kill(self.process.pid, sig)
        self.process.stop()
