"""Start a real `funcemu start` process for a test app and talk to it over HTTP (standard library only)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
READY = re.compile(r"Listening on (http://\S+)")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode()


def request(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
            raw: bytes | None = None, timeout: float = 30) -> Reply:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


class HostProcess:
    """`python -m funcemu start` for `app` on a free port; the log is kept for failing tests."""

    def __init__(self, app: Path, *args: str, env: dict[str, str] | None = None, start_timeout: float = 30,
                 command: list[str] | None = None, cwd: Path | None = None) -> None:
        """`command` replaces the whole default command line (`python -m funcemu start --app APP --port 0`);
        it runs in `cwd` (default: the app folder)."""
        self.app, self.args, self.start_timeout = app, list(args), start_timeout
        self.env = {**os.environ, **(env or {})}
        self.command, self.cwd = command, cwd or app
        self.lines: list[str] = []
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._changed = threading.Condition()
        self._eof = False

    def start(self) -> HostProcess:
        cmd = self.command or [sys.executable, "-m", "funcemu", "start", "--app", str(self.app), "--port", "0",
                               *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=self.env, cwd=self.cwd)
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(self.start_timeout) or not self.url:
            self.stop()
            raise RuntimeError(f"funcemu did not start (exit {self.proc.returncode}):\n{self.log}")
        return self

    def _pump(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
            match = READY.search(line)
            if match and not self.url:
                self.url = match.group(1)
                self._ready.set()
        self._ready.set()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for_log(self, pattern: str, timeout: float = 10, since: int = 0) -> re.Match[str]:
        """The first log line from index `since` on that matches `pattern` (waits for it, deadline-bounded)."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((m for line in self.lines[since:] if (m := compiled.search(line))), None)
                left = deadline - time.monotonic()
                if found or left <= 0 or self._eof:
                    break
                self._changed.wait(left)
        if found is None:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout}s; log:\n{self.log[-4000:]}")
        return found

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc
        code = self.proc.wait(timeout)
        self._ready.wait(5)
        self._close_output()
        return code

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_output()

    def _close_output(self) -> None:
        """Once the output is read to its end, close the pipe (an open one is a ResourceWarning at exit)."""
        with self._changed:
            self._changed.wait_for(lambda: self._eof, timeout=5)
        if self.proc and self.proc.stdout and self._eof:
            self.proc.stdout.close()

    def __enter__(self) -> HostProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return request(method, self.url + path, body, **kwargs)

    def wait_for(self, instance_id: str, timeout: float = 20, statuses: tuple[str, ...] = (
            "Completed", "Failed", "Terminated", "Canceled")) -> dict[str, Any]:
        """Poll the status route until the instance reaches one of `statuses` (deadline-bounded)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            reply = self.call("GET", f"/runtime/webhooks/durabletask/instances/{instance_id}?showHistory=true"
                                     "&showHistoryOutput=true")
            last = reply.json() if reply.body else reply.status
            if isinstance(last, dict) and last.get("runtimeStatus") in statuses:
                return last
            time.sleep(0.02)
        raise AssertionError(f"instance {instance_id} did not reach {statuses} in {timeout}s; last: {last}\n"
                             f"log:\n{self.log[-4000:]}")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 30, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "funcemu", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, **(env or {})})


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll `check` until it returns something truthy; AssertionError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last value: {value!r})")
        time.sleep(interval)
