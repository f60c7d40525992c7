"""Helpers for the trigger tests: funcemu host processes for a written app, Azurite queues, polling,
and a port that refuses connections until a test opens it (storage that comes up late)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import socketserver
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from support import wait_until as wait_until  # re-exported for the trigger tests

from funcemu.testing.httpclient import HttpClient, Response
from funcemu.testing.process import ProcessExited, WatchedProcess

LISTENING = re.compile(r"Listening on (http://\S+)")
REMOVED_FROM_ENV = ("AzureWebJobsStorage", "ConnectionStrings:AzureWebJobsStorage", "WEBSITE_TIME_ZONE", "TZ")


class AppHost:
    """One `funcemu start` process; `log()` is everything it printed."""

    def __init__(self, app: Path, env: dict[str, str]) -> None:
        self.app = app
        command = [sys.executable, "-m", "funcemu", "start", "--app", str(app), "--port", "0",
                   "--storage", "memory"]
        self.process = WatchedProcess(command, cwd=app, env=env)
        self.url = ""

    def wait_ready(self, timeout: float = 60.0) -> AppHost:
        try:
            found = self.process.wait_for(LISTENING, timeout)
        except (ProcessExited, TimeoutError) as error:
            self.stop()
            raise AssertionError(f"host did not start: {error}\n--- output ---\n{self.log()}") from None
        self.url = found[0].group(1)
        return self

    def wait_exit(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.process.is_running():
            if time.monotonic() > deadline:
                raise AssertionError(f"host still running after {timeout:g} s\n{self.log()}")
            time.sleep(0.05)
        return int(self.process.exit_code or 0)

    def wait_log(self, pattern: str, timeout: float = 20.0, count: int = 1) -> list[re.Match[str]]:
        try:
            return self.process.wait_for(re.compile(pattern), timeout, count)
        except (ProcessExited, TimeoutError) as error:
            raise AssertionError(f"{error}\n--- host output ---\n{self.log()}") from None

    def log(self) -> str:
        return self.process.output()

    def post(self, path: str, body: Any) -> Response:
        return HttpClient(self.url).post(path, body)

    def stop(self) -> None:
        self.process.stop()


def write_app(folder: Path, code: str, *, settings: dict[str, str] | None = None,
              host_json: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function_app.py").write_text(textwrap.dedent(code))
    (folder / "host.json").write_text(json.dumps({"version": "2.0", **(host_json or {})}))
    values = {"FUNCTIONS_WORKER_RUNTIME": "python", **(settings or {})}
    (folder / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return folder


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in REMOVED_FROM_ENV and not k.startswith("AzureFunctionsJobHost__")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def launch(folder: Path, code: str, *, settings: dict[str, str] | None = None,
           host_json: dict[str, Any] | None = None, env: dict[str, str] | None = None,
           wait: bool = True) -> AppHost:
    """Write the app into `folder` and start a host on it (ready unless `wait=False`)."""
    host = AppHost(write_app(folder, code, settings=settings, host_json=host_json), clean_env(env))
    return host.wait_ready() if wait else host


def queue_client(connection: str, name: str, encoding: str = "base64") -> Any:
    """A sync QueueClient; with base64 it encodes and decodes as the host's default messageEncoding."""
    if encoding == "base64":
        return QueueClient.from_connection_string(connection, name, message_encode_policy=TextBase64EncodePolicy(),
                                                  message_decode_policy=TextBase64DecodePolicy())
    return QueueClient.from_connection_string(connection, name)


def peek_all(client: Any) -> list[str]:
    """Contents of the visible messages (up to 32), or [] when the queue does not exist."""
    try:
        return [m.content for m in client.peek_messages(max_messages=32)]
    except ResourceNotFoundError:
        return []


def ensure_queue(client: Any) -> Any:
    try:
        client.create_queue()
    except ResourceExistsError:
        pass
    return client


def closed_port_connection(port: int, service: str = "Queue") -> str:
    """A connection string whose `service` endpoint is 127.0.0.1:`port` (the others are unset)."""
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            f"{service}Endpoint=http://127.0.0.1:{port}/devstoreaccount1;")


def with_endpoint_port(connection: str, service: str, port: int) -> str:
    """`connection` with the port of its `<service>Endpoint` replaced."""
    return re.sub(rf"({service}Endpoint=http://[^:;/]+:)\d+", rf"\g<1>{port}", connection)


def endpoint_address(connection: str, service: str) -> tuple[str, int]:
    found = re.search(rf"{service}Endpoint=http://([^:;/]+):(\d+)", connection)
    if found is None:
        raise ValueError(f"no {service}Endpoint with a port in {connection!r}")
    return found.group(1), int(found.group(2))


class LatePort:
    """A local port that refuses connections until `forward_to(address)`, then relays them there.

    The port is bound but not listening from the start, so a connection string can name it before the
    storage behind it is reachable, and no other process can take it in the meantime.
    """

    def __init__(self) -> None:
        self._server = _RelayServer(("127.0.0.1", 0), _Relay, bind_and_activate=False)
        self._server.server_bind()
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def forward_to(self, address: tuple[str, int]) -> None:
        self._server.target = address
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, name="late port", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> LatePort:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _RelayServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    target: tuple[str, int] = ("127.0.0.1", 0)


class _Relay(socketserver.BaseRequestHandler):
    server: _RelayServer

    def handle(self) -> None:
        try:
            upstream = socket.create_connection(self.server.target, timeout=10)
        except OSError:
            return
        upstream.settimeout(None)   # idle keep-alive connections stay open, as without the relay
        with upstream:
            back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
            back.start()
            _pump(self.request, upstream)
            back.join(timeout=10)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until the source ends, then end the sink's sending side."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
