"""Helpers for the trigger tests: funcemu host processes for a written app, Azurite queues, polling."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from funcemu.testing.httpclient import HttpClient, Response
from funcemu.testing.process import ProcessExited, WatchedProcess

LISTENING = re.compile(r"Listening on (http://\S+)")
REMOVED_FROM_ENV = ("AzureWebJobsStorage", "ConnectionStrings:AzureWebJobsStorage", "WEBSITE_TIME_ZONE", "TZ")
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; AssertionError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last value: {value!r})")
        time.sleep(interval)


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
