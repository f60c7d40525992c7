"""A child process whose output is kept and watched: wait for a line, read what it printed, stop it."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class ProcessExited(RuntimeError):
    pass


class WatchedProcess:
    """Runs `command` with stdout and stderr merged; a thread keeps every line for `wait_for` and logs."""

    def __init__(
        self, command: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.command = list(command)
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._process = subprocess.Popen(
            self.command,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        threading.Thread(target=self._read, name=f"output of {Path(command[0]).name}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def is_running(self) -> bool:
        return self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self._process.poll()

    def position(self) -> int:
        with self._changed:
            return len(self._lines)

    def output(self, since: int = 0) -> str:
        with self._changed:
            return "".join(self._lines[since:])

    def wait_for(self, pattern: re.Pattern[str], timeout: float, count: int = 1) -> list[re.Match[str]]:
        """The first `count` matches of `pattern` in the output, waiting at most `timeout` seconds.

        Raises ProcessExited if the output ends first, TimeoutError if the time runs out.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [match for line in self._lines if (match := pattern.search(line))]
                if len(found) >= count:
                    return found[:count]
                if self._ended:
                    raise ProcessExited(f"it exited with status {self._exit_status()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no line matching {pattern.pattern!r} within {timeout:g} s")
                self._changed.wait(min(left, 0.5))

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        if self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout)

    def _read(self) -> None:
        stream = self._process.stdout
        if stream is not None:
            with stream:
                for line in stream:
                    with self._changed:
                        self._lines.append(line)
                        self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def _exit_status(self) -> int | None:
        try:
            return self._process.wait(5)
        except subprocess.TimeoutExpired:
            return None
