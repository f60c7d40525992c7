"""Orchestrator episodes in a child process (`funcemu start --orchestrator-process`), as the real host
runs user code in its language worker: the handler of one episode runs there while this process
applies, stores and schedules the others, so on a machine with two cores or more the host's own work
no longer shares a core (and the GIL) with the SDK's replay.

The host builds each episode's document and reads the reply exactly as in process (orchestrator.py):
only the handler call crosses the boundary, as text. The child imports the app itself; the episodes
wait for it, so startup is not delayed. Log records and `print()` lines of orchestrator code come back
over the same socket and are logged here, in order, before the reply of their episode. If the child
dies, the episodes in flight fail (their messages stay, so they run again) and a new child starts.

Frames, both ways: a 4-byte big-endian length, then a JSON header line and a body (worker_process.py).
Not on Windows (the socket is inherited with `pass_fds`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from funcemu.durable.orchestrator import HandlerReply
from funcemu.errors import FuncemuError

log = logging.getLogger("funcemu.durable")
LENGTH = struct.Struct(">I")
RESTART_FIRST_DELAY, RESTART_MAX_DELAY = 0.5, 10.0
STABLE_AFTER = 30.0  # seconds a child must have lived for its exit to restart the back-off
STOP_TIMEOUT = 5.0


class OrchestratorProcessError(RuntimeError):
    """The child could not run the episode (it exited, or could not load the app)."""


def frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    payload = json.dumps(header, separators=(",", ":")).encode() + b"\n" + body
    return LENGTH.pack(len(payload)) + payload


def split_frame(payload: bytes) -> tuple[dict[str, Any], bytes]:
    header, _, body = payload.partition(b"\n")
    return json.loads(header), body


class OrchestratorProcess:
    """The child process and the episodes waiting for it."""

    def __init__(self, app_root: Path, script_file: str, functions_allow: list[str] | None = None) -> None:
        self.app_root, self.script_file, self.functions_allow = app_root, script_file, functions_allow
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[HandlerReply]] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ready: asyncio.Future[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._restart_delay = RESTART_FIRST_DELAY
        self._started_at = 0.0
        self.starts = 0  # children started so far (a restart counts)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        """Start the child; returns at once (episodes wait until it has loaded the app)."""
        if os.name != "posix":
            raise FuncemuError("--orchestrator-process needs a POSIX system (Linux, macOS); "
                               "run without it to keep orchestrators in the host process")
        ours, theirs = socket.socketpair()
        if self._ready is None or self._ready.done():  # a restart keeps the future episodes wait on
            self._ready = asyncio.get_running_loop().create_future()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "funcemu.durable.worker_process", str(self.app_root), self.script_file,
                 str(theirs.fileno()), json.dumps(self.functions_allow), str(logging.getLogger().getEffectiveLevel())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=_child_environment(),
                cwd=os.getcwd())
        finally:
            theirs.close()
        self.starts += 1
        self._started_at = time.monotonic()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours, limit=2**26)
        self._reader_task = asyncio.create_task(self._read(reader), name="funcemu-orchestrator-process")

    async def wait_ready(self) -> None:
        """Until the child has loaded the app (raises OrchestratorProcessError if it could not)."""
        assert self._ready is not None, "start() first"
        await asyncio.shield(self._ready)

    async def call(self, function: str, name: str, document: str, replaying: bool) -> HandlerReply:
        """Run the handler of orchestrator function `function` on `document` in the child."""
        assert self._ready is not None and self._writer is not None, "start() first"
        await asyncio.shield(self._ready)
        writer = self._writer
        call_id = next(self._ids)
        reply: asyncio.Future[HandlerReply] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = reply
        try:
            writer.write(frame({"id": call_id, "function": function, "name": name, "replaying": replaying},
                               document.encode()))
            await writer.drain()
            return await reply
        except (ConnectionError, OSError) as exc:
            raise OrchestratorProcessError(f"the orchestrator process is gone ({exc})") from exc
        finally:
            self._pending.pop(call_id, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                size = LENGTH.unpack(await reader.readexactly(LENGTH.size))[0]
                header, body = split_frame(await reader.readexactly(size))
                self._dispatch(header, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        await self._child_exited()

    def _dispatch(self, header: dict[str, Any], body: bytes) -> None:
        if "log" in header:
            _emit(header["log"])
        elif "ready" in header:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif "fatal" in header:
            log.error("The orchestrator process could not load the app: %s", header["fatal"])
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(OrchestratorProcessError(header["fatal"]))
                self._ready.exception()  # retrieved: no "never retrieved" warning when nothing waits
        else:
            waiting = self._pending.get(header["id"])
            if waiting is not None and not waiting.done():
                text = body.decode() if header.get("text") else None
                waiting.set_result(HandlerReply(text, header.get("error"), header.get("stack") or "",
                                                header.get("raised") or ""))

    async def _child_exited(self) -> None:
        process = self._process
        code = await asyncio.to_thread(process.wait) if process is not None else None
        if self._writer is not None:
            self._writer.close()
        lost = OrchestratorProcessError(f"the orchestrator process exited (code {code})")
        for waiting in self._pending.values():
            if not waiting.done():
                waiting.set_exception(lost)
        if self._stopping:
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(lost)
            return
        if self._ready is None or self._ready.done():  # new episodes wait for the next child
            self._ready = asyncio.get_running_loop().create_future()
        if time.monotonic() - self._started_at > STABLE_AFTER:  # not a crash loop: start over quickly
            self._restart_delay = RESTART_FIRST_DELAY
        log.error("The orchestrator process exited (code %s); starting a new one in %.1f s", code,
                  self._restart_delay)
        await asyncio.sleep(self._restart_delay)
        self._restart_delay = min(self._restart_delay * 2, RESTART_MAX_DELAY)
        if not self._stopping:
            await self.start()

    async def stop(self) -> None:
        self._stopping = True
        if self._reader_task is not None:  # reading, or waiting to restart the child
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()  # the child ends at end of input
        process = self._process
        if process is not None and process.poll() is None:
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()


def _emit(fields: dict[str, Any]) -> None:
    """A record of the child's, logged here (the console's handlers and filters decide what shows)."""
    record = logging.makeLogRecord(fields)
    logging.getLogger(record.name).handle(record)


def _child_environment() -> dict[str, str]:
    """This process's environment (the app settings are in it), with funcemu importable as it is here."""
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env
