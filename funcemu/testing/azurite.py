"""Azurite, the Azure Storage emulator, for tests of the Azure Storage store.

`find_running()` reuses an Azurite that already listens on 127.0.0.1:10000-10002 (started by
`docker compose up -d azurite`, `npm run azurite`, or the VS Code extension). Otherwise `start()` runs
the npm package (`npm install` puts it in node_modules/.bin) in memory on free ports.
"""

from __future__ import annotations

import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from funcemu.errors import FuncemuError
from funcemu.testing.process import ProcessExited, WatchedProcess

# The well-known development account of every storage emulator (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}
LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (http://\S+)")
FLAGS = ("--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent")


class AzuriteError(FuncemuError):
    pass


@dataclass
class Azurite:
    """Endpoints of one Azurite (`http://127.0.0.1:10000` style, without the account)."""

    blob_endpoint: str
    queue_endpoint: str
    table_endpoint: str
    process: WatchedProcess | None = field(default=None, repr=False)

    @property
    def started_here(self) -> bool:
        return self.process is not None

    @property
    def connection_string(self) -> str:
        """A full connection string; equivalent to `UseDevelopmentStorage=true` on the default ports."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint}/{ACCOUNT};QueueEndpoint={self.queue_endpoint}/{ACCOUNT};"
            f"TableEndpoint={self.table_endpoint}/{ACCOUNT};"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def find_running(host: str = "127.0.0.1") -> Azurite | None:
    if not all(_listening(host, port) for port in DEFAULT_PORTS.values()):
        return None
    blob, queue, table = (f"http://{host}:{port}" for port in DEFAULT_PORTS.values())
    return Azurite(blob, queue, table)


def find_executable(start: Path) -> Path | None:
    """node_modules/.bin/azurite in `start` or a folder above it, else `azurite` on PATH."""
    for folder in (start, *start.parents):
        candidate = folder / "node_modules" / ".bin" / "azurite"
        if candidate.exists():
            return candidate
    found = shutil.which("azurite")
    return Path(found) if found else None


def start(executable: Path, workspace: Path, timeout: float = 60.0) -> Azurite:
    """Start Azurite in memory on ports the OS picks; `workspace` is its working folder."""
    command = [
        str(executable),
        *FLAGS,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        "0",
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        "0",
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        "0",
    ]
    process = WatchedProcess(command, cwd=workspace)
    try:
        found = process.wait_for(LISTENING, timeout, count=3)
    except (ProcessExited, TimeoutError) as error:
        process.stop()
        raise AzuriteError(
            f"Azurite did not start: {error}\ncommand: {' '.join(command)}\n"
            f"--- output ---\n{process.output().rstrip()}"
        ) from None
    endpoints = {match.group(1).lower(): match.group(2).rstrip("/") for match in found}
    return Azurite(endpoints["blob"], endpoints["queue"], endpoints["table"], process)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
