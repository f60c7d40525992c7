"""Workloads against real `python -m funcemu start` processes: startup to a ready status endpoint, and
many orchestrations started concurrently over HTTP.

    python -m benchmarks.procs '{"workload": "startup", "store": "sqlite", "samples": 5}'

prints one line `BENCH-RESULT {json}`, like `benchmarks.inproc`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.inproc import APP, RESULT_PREFIX, WorkloadError
from funcemu.testing.host import start_command

ROOT = Path(__file__).resolve().parent.parent
SDK_IMPORTS = "import azure.functions, azure.durable_functions, aiohttp"
ACTIVE = "/runtime/webhooks/durabletask/instances?runtimeStatus=Pending,Running&top=1"
FAILED = "/runtime/webhooks/durabletask/instances?runtimeStatus=Failed,Terminated,Canceled&top=1"


def reference_app() -> Path:
    """The repository's reference app when it is there, else the benchmark app."""
    return ROOT if (ROOT / "function_app.py").is_file() and (ROOT / "host.json").is_file() else APP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HostProcess:
    """`funcemu start` on a port chosen here, so readiness can be polled from the first millisecond."""

    def __init__(self, app: Path, store: str, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = start_command(app, "--port", str(self.port), "--storage", store, "--data-dir", str(data_dir))
        self.log = tempfile.TemporaryFile(mode="w+")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, cwd=app, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from spawn until GET /admin/host/status answers 200 with state Running."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise WorkloadError(
                    f"funcemu exited with {self.process.returncode}:\n{self.output()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + "/admin/host/status", timeout=2) as reply:
                    if reply.status == 200 and json.load(reply).get("state") == "Running":
                        return time.perf_counter() - self.started
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.005)
        raise WorkloadError(f"funcemu was not ready within {timeout:.0f} s:\n{self.output()[-2000:]}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def import_floor() -> float:
    """Seconds to start Python and import the SDKs any host of this app must load."""
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-c", SDK_IMPORTS], check=True, cwd=ROOT)
    return time.perf_counter() - begin


def startup(spec: dict[str, Any]) -> dict[str, Any]:
    app, ready, floors = reference_app(), [], []
    for _ in range(spec.get("samples", 3)):
        floors.append(import_floor())
        with tempfile.TemporaryDirectory(prefix="funcemu-bench-") as data_dir:
            host = HostProcess(app, spec["store"], Path(data_dir))
            try:
                ready.append(host.wait_ready())
            finally:
                host.stop()
    return {"app": str(app.relative_to(ROOT)) or ".", "samples": ready, "import_floor_samples": floors}


async def _many(
    session: aiohttp.ClientSession, method: str, url: str, count: int, concurrency: int
) -> tuple[float, list[float], list[Any]]:
    """`count` requests, `concurrency` at a time: total seconds, each latency, each JSON body (or None)."""
    latencies: list[float] = []
    bodies: list[Any] = []
    left = iter(range(count))

    async def client() -> None:
        for _ in left:
            begin = time.perf_counter()
            async with session.request(method, url) as reply:
                text = await reply.text()
                if reply.status >= 300:
                    raise WorkloadError(f"{method} {url} answered {reply.status}: {text[:300]}")
            latencies.append(time.perf_counter() - begin)
            bodies.append(json.loads(text) if text.startswith("{") else None)

    begin = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - begin, latencies, bodies


async def _until_idle(session: aiohttp.ClientSession, base: str, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        async with session.get(base + ACTIVE) as reply:
            if not await reply.json():
                return
        await asyncio.sleep(0.02)
    raise WorkloadError(f"instances still running after {timeout:.0f} s")


async def _http_starts(base: str, spec: dict[str, Any]) -> dict[str, Any]:
    count, concurrency = spec["size"], spec.get("concurrency", 32)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _many(session, "POST", base + "/api/start/hello_cities", 1, 1)  # warm up both paths
        await _many(session, "GET", base + "/api/ping", concurrency, concurrency)
        await _until_idle(session, base, 60)
        ping_seconds, _, _ = await _many(session, "GET", base + "/api/ping", count, concurrency)
        begin = time.perf_counter()
        start_seconds, latencies, _ = await _many(
            session, "POST", base + "/api/start/hello_cities", count, concurrency
        )
        await _until_idle(session, base, spec.get("timeout", 600))
        total = time.perf_counter() - begin
        async with session.get(base + FAILED) as reply:
            failed = await reply.json()
        if failed:
            raise WorkloadError(f"an instance did not complete: {failed[0]}")
    latencies.sort()
    return {
        "seconds": total,
        "start_seconds": start_seconds,
        "ping_seconds": ping_seconds,
        "start_p50": latencies[len(latencies) // 2],
        "start_p95": latencies[int(len(latencies) * 0.95)],
        "concurrency": concurrency,
    }


def http(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="funcemu-bench-") as data_dir:
        host = HostProcess(APP, spec["store"], Path(data_dir))
        try:
            host.wait_ready()
            return asyncio.run(_http_starts(host.url, spec))
        finally:
            host.stop()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    spec = json.loads(argv[0])
    try:
        result = {"startup": startup, "http": http}[spec["workload"]](spec)
        code = 0
    except Exception as error:
        traceback.print_exc()
        result, code = {"error": f"{type(error).__name__}: {error}"}, 1
    print(RESULT_PREFIX + json.dumps({**spec, **result, "load": os.getloadavg()[0]}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
