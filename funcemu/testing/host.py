"""Function hosts that tests talk to: a funcemu process started for the test session, or a running host.

`EmulatorHost` runs `python -m funcemu start --port 0` for an app folder, waits for its
`Listening on http://...` line, keeps its output (for failing test reports) and stops it again.
`RemoteHost` wraps the URL of a host that is already running: `func start`, or an app on Azure.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from funcemu.errors import FuncemuError
from funcemu.testing.httpclient import HttpClient, Response
from funcemu.testing.process import ProcessExited, WatchedProcess

LISTENING = re.compile(r"Listening on (http://\S+)")
STORAGE_KINDS = ("memory", "sqlite", "azure")


class HostStartError(FuncemuError):
    def __init__(self, reason: str, command: Sequence[str], output: str) -> None:
        shown = output.rstrip() or "(no output)"
        super().__init__(
            f"funcemu host did not start: {reason}\ncommand: {' '.join(command)}\n"
            f"--- host output ---\n{shown}"
        )


class Host:
    """What tests need from any host: where it is, how to call it, and what it logged."""

    is_emulator = False
    ready_position = 0  # log position when the host was ready: what it printed before is its banner

    def __init__(self, url: str, key: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.http = HttpClient(self.url, key)

    def get(self, path: str, **params: Any) -> Response:
        return self.http.get(path, params or None)

    def post(self, path: str, json: Any = None, *, headers: Mapping[str, str] | None = None) -> Response:
        return self.http.post(path, json, headers=headers)

    def log_position(self) -> int:
        return 0

    def log_since(self, position: int = 0) -> str:
        return ""

    def is_running(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class RemoteHost(Host):
    """A host started by someone else (`func start`, a deployed app): never started or stopped here."""


class EmulatorHost(Host):
    """A `funcemu start` process for one app folder, on a free port, with its own store."""

    is_emulator = True

    def __init__(
        self,
        app: Path,
        *,
        storage: str = "sqlite",
        data_dir: Path | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        if storage not in STORAGE_KINDS:
            raise ValueError(f"storage must be one of {', '.join(STORAGE_KINDS)}, got {storage!r}")
        super().__init__("http://127.0.0.1:0")
        self.app = Path(app)
        self.command = host_command(self.app, storage, data_dir, extra_args)
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._process: WatchedProcess | None = None

    def start(self, timeout: float = 60.0) -> EmulatorHost:
        if self._process is not None:
            raise RuntimeError(f"{self!r} is already started")
        self._process = WatchedProcess(self.command, cwd=self.app, env=self.env)
        try:
            found = self._process.wait_for(LISTENING, timeout)
        except (ProcessExited, TimeoutError) as error:
            output = self._process.output()
            self.stop()
            raise HostStartError(str(error), self.command, output) from None
        except BaseException:
            self.stop()
            raise
        self.url = found[0].group(1).rstrip("/")
        self.http = HttpClient(self.url, self.key)
        self.ready_position = self._process.position()
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def is_running(self) -> bool:
        return self._process is not None and self._process.is_running()

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.exit_code

    def log_position(self) -> int:
        return 0 if self._process is None else self._process.position()

    def log_since(self, position: int = 0) -> str:
        return "" if self._process is None else self._process.output(position)

    def __enter__(self) -> EmulatorHost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_command(app: Path, *options: str) -> list[str]:
    """`python -m funcemu start --app <app>` followed by `options`."""
    return [sys.executable, "-m", "funcemu", "start", "--app", str(app), *options]


def host_command(app: Path, storage: str, data_dir: Path | None, extra_args: Sequence[str]) -> list[str]:
    command = start_command(app, "--port", "0", "--host", "127.0.0.1", "--storage", storage)
    if data_dir is not None and storage == "sqlite":
        command += ["--data-dir", str(data_dir)]
    return command + list(extra_args)
