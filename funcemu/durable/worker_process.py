"""The child of worker.py: import the app, then run orchestrator handlers on the documents it is sent.

    python -m funcemu.durable.worker_process APP_ROOT SCRIPT_FILE FD FUNCTIONS_ALLOW_JSON LOG_LEVEL

Reads request frames from the inherited socket FD until end of input; answers each with a reply
frame. Log records at LOG_LEVEL and up (the host's), and `print()` lines, go back as log frames.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

from funcemu.durable.worker import LENGTH, frame, split_frame


class _Channel:
    """The socket to the host; writes are whole frames (a log record may come from another thread)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        data = frame(header, body)
        with self._lock:
            self.sock.sendall(data)


class _Forward(logging.Handler):
    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self.channel.send({"log": {"name": record.name, "levelno": record.levelno,
                                       "levelname": record.levelname, "msg": message, "created": record.created,
                                       "threadName": record.threadName}})
        except Exception:  # noqa: BLE001 - a record that cannot be sent must not fail the episode
            self.handleError(record)


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    return stream.read(LENGTH.unpack(head)[0])


def main(argv: list[str]) -> int:
    app_root, script_file, fd, allow, level = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in the terminal is the host's to handle
    channel = _Channel(socket.socket(fileno=int(fd)))
    root = logging.getLogger()
    root.handlers[:] = [logging.NullHandler()]
    try:
        from funcemu.app import load_app

        with contextlib.redirect_stdout(io.StringIO()):  # the host showed what importing the app prints
            indexed = load_app(Path(app_root), script_file, json.loads(allow))
    except Exception as exc:  # noqa: BLE001 - the host says what went wrong
        channel.send({"fatal": f"{type(exc).__name__}: {exc}"})
        return 1
    from funcemu.console import ConsoleStdout

    root.handlers[:] = [_Forward(channel)]
    root.setLevel(int(level))
    sys.stdout = ConsoleStdout(sys.stdout)  # print() lines as the host shows them
    from funcemu.durable.orchestrator import call_handler

    handlers = {f.name: f.callable for f in indexed.functions if f.trigger_type == "orchestrationTrigger"}
    try:
        channel.send({"ready": True})
        stream = channel.sock.makefile("rb")
        while (payload := _read_frame(stream)) is not None:
            request, document = split_frame(payload)
            handler = handlers.get(request["function"])
            if handler is None:
                channel.send({"id": request["id"], "error": f"no orchestrator function '{request['function']}'"})
                continue
            reply = call_handler(handler, request["name"], document.decode(), request["replaying"])
            text = reply.text.encode() if reply.text is not None else b""
            channel.send({"id": request["id"], "error": reply.error, "stack": reply.stack, "raised": reply.raised,
                          "text": reply.text is not None}, text)
    except (BrokenPipeError, ConnectionError):  # the host went away (it stopped mid-episode): nothing to say
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
