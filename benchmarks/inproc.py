"""In-process durable workloads: a real `Host` (store, engine, activity runner, thread pool) on the
benchmark app, driven through `host.engine`, then both baselines on what the engine did.

One run per process, so peak RSS and warm caches belong to that run alone:

    python -m benchmarks.inproc '{"workload": "hello_cities", "store": "sqlite", "size": 300}'

prints one line `BENCH-RESULT {json}`. `"orchestrator_process": true` runs orchestrator code in the
host's child process (`funcemu start --orchestrator-process`). The Azure store reads its connection string from
`AzureWebJobsStorage` and its hub from `AzureFunctionsJobHost__extensions__durableTask__hubName`,
both set by `run.py`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from benchmarks import floor
from funcemu.config import load_config
from funcemu.host import Host, HostOptions

APP = Path(__file__).parent / "apps" / "bench_app"
RESULT_PREFIX = "BENCH-RESULT "
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}


class WorkloadError(Exception):
    pass


@asynccontextmanager
async def bench_host(store: str, workdir: Path, orchestrator_process: bool = False) -> AsyncIterator[Host]:
    options = HostOptions(storage=store, data_dir=workdir, orchestrator_process=orchestrator_process)
    host = Host(load_config(APP, port=0), options)
    await host.start()
    if host.engine is not None and host.engine.orchestrator_process is not None:
        await host.engine.orchestrator_process.wait_ready()  # throughput, not startup, is measured here
    try:
        yield host
    finally:
        await host.stop()


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec, so a child
    would report its parent's peak at fork time when that is larger."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; elsewhere bytes


def stored_input(value: Any) -> str | None:
    """ExecutionStarted.Input as the Python client's start stores it: a JSON string of JSON text."""
    return None if value is None else json.dumps(json.dumps(value, separators=(",", ":")))


async def run_orchestrations(host: Host, name: str, value: Any, count: int, timeout: float) -> dict[str, Any]:
    """Start `count` instances at once and wait for all of them; the engine's figures.

    The deadline is checked here rather than by cancelling: an episode holds the event loop for as
    long as it runs, and a cancellation that races a completion can be lost in asyncio.wait_for."""
    engine = host.engine
    gc.collect()
    cpu, begin = time.process_time(), time.perf_counter()
    ids = [await engine.start_new(name, None, stored_input(value)) for _ in range(count)]
    for done, instance_id in enumerate(ids):
        state = await engine.wait_for_completion(instance_id, max(begin + timeout - time.perf_counter(), 0.0))
        if state is not None and not state.runtime_status.is_terminal:
            raise WorkloadError(f"timed out after {timeout:.0f} s ({await _progress(host, ids, done)})")
        if state is None or state.runtime_status.value != "Completed":
            status = state.runtime_status.value if state else "missing"
            raise WorkloadError(f"instance {instance_id} of {name} ended {status}: {state and state.output}")
    wall = time.perf_counter() - begin
    return {"ids": ids, "wall": wall, "cpu": time.process_time() - cpu, "rss_mb": peak_rss_mb()}


async def _progress(host: Host, ids: list[str], done: int) -> str:
    if len(ids) > 1:
        return f"{done} of {len(ids)} instances completed"
    history = await host.engine.get_history(ids[0])
    scheduled = sum(e["EventType"] == floor.TASK_SCHEDULED for e in history)
    completed = sum(e["EventType"] == floor.TASK_COMPLETED for e in history)
    episodes = sum(e["EventType"] == floor.ORCHESTRATOR_STARTED for e in history)
    return f"{completed} of {scheduled} activity results applied in {episodes} episodes"


async def baselines(host: Host, name: str, ids: list[str], spec: dict[str, Any]) -> dict[str, Any]:
    """SDK floor and direct activity calls on the histories the engine wrote."""
    histories = [await host.engine.get_history(instance_id) for instance_id in ids]
    functions = {f.durable_name.lower(): f for f in host.indexed.functions}
    all_episodes = [
        e for instance_id, h in zip(ids, histories, strict=True) for e in floor.episodes(instance_id, h)
    ]
    sdk = floor.sdk_floor(
        functions[name.lower()].callable,
        all_episodes,
        budget=spec.get("floor_budget", 20.0),
        passes=spec.get("floor_passes", 3),
    )
    activities = {
        key: (f.callable, f.trigger["name"])
        for key, f in functions.items()
        if f.trigger_type == "activityTrigger"
    }
    calls = [call for h in histories for call in floor.activity_calls(h)]
    return {
        "floor": sdk.as_dict(),
        "direct_seconds": floor.direct_calls(activities, calls),
        "activity_calls": len(calls),
    }


async def orchestration_workload(host: Host, spec: dict[str, Any]) -> dict[str, Any]:
    name, size = spec["workload"], spec["size"]
    count, value = (size, None) if name == "hello_cities" else (1, size)
    measured = await run_orchestrations(host, name, value, count, spec.get("timeout", 600))
    ids = measured.pop("ids")
    return {**measured, "instances": count, **await baselines(host, name, ids, spec)}


async def wake_workload(host: Host, spec: dict[str, Any]) -> dict[str, Any]:
    """An instance waiting for an event sits idle for `idle` seconds; then the event is raised.
    Latency: raise_event until the instance is Completed."""
    engine, samples = host.engine, []
    for _ in range(spec.get("samples", 3)):
        instance_id = await engine.start_new("wait_event", None, None)
        await _wait_status(host, instance_id, "Running", 60)
        await asyncio.sleep(spec.get("idle", 2.0))
        begin = time.perf_counter()
        await engine.raise_event(instance_id, "Wake", json.dumps("now"))
        state = await engine.wait_for_completion(instance_id, 60)
        if state is None or state.runtime_status.value != "Completed":
            raise WorkloadError(f"wait_event instance {instance_id} did not complete after the event")
        samples.append(time.perf_counter() - begin)
    return {"samples": samples, "idle": spec.get("idle", 2.0), "rss_mb": peak_rss_mb()}


async def _wait_status(host: Host, instance_id: str, status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await host.engine.get_instance(instance_id)
        if state is not None and state.runtime_status.value in {status} | TERMINAL:
            return
        await asyncio.sleep(0.005)
    raise WorkloadError(f"instance {instance_id} never reached {status}")


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="funcemu-bench-") as workdir:
        async with bench_host(spec["store"], Path(workdir), spec.get("orchestrator_process", False)) as host:
            idle_rss = peak_rss_mb()
            workload = wake_workload if spec["workload"] == "wake" else orchestration_workload
            try:  # a backstop: run_orchestrations checks its own deadline
                result = await asyncio.wait_for(workload(host, spec), spec.get("timeout", 600) + 30)
            except asyncio.TimeoutError:
                raise WorkloadError(f"timed out after {spec.get('timeout', 600) + 30:.0f} s") from None
            if host.engine.errors:
                result["engine_errors"] = [repr(error) for error in host.engine.errors[:3]]
            return {**result, "idle_rss_mb": idle_rss}


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    spec = json.loads(argv[0])
    try:
        result = asyncio.run(run(spec))
        code = 0
    except Exception as error:  # reported in the table, with the reason
        traceback.print_exc()
        result, code = {"error": f"{type(error).__name__}: {error}", "rss_mb_at_error": peak_rss_mb()}, 1
    print(RESULT_PREFIX + json.dumps({**spec, **result}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
