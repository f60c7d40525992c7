"""Run every benchmark workload and print each figure beside its baseline, measured in the same run.

    python benchmarks/run.py [--quick | --tiny] [--stores memory,sqlite,azure] [--repeats N] [--json out.json]

Each run of a workload is its own process (`benchmarks.inproc` or `benchmarks.procs`), so peak RSS and
caches belong to that run; repeats are interleaved (all workloads once, then again) so a burst of
other load on the machine spreads over the workloads instead of hitting every repeat of one.
See benchmarks/README.md for what each workload and baseline means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402
from benchmarks.inproc import RESULT_PREFIX  # noqa: E402

STORES = ("memory", "sqlite", "azure")


@dataclass(frozen=True)
class Scale:
    hello: int
    chain: int
    fan: tuple[int, int]
    http: int
    repeats: int
    samples: int  # startup and wake samples per repeat
    wake_idle: float  # seconds an instance idles before the event (azure: long enough to back off)
    large_timeout: float  # for the large fan-out
    floor_budget: float  # seconds the SDK floor of one run may take before it is sampled
    azure_hello: int
    azure_chain: int
    azure_http: int


SCALES = {
    "full": Scale(hello=300, chain=100, fan=(1000, 10000), http=200, repeats=3, samples=3, wake_idle=3.0,
                  large_timeout=90, floor_budget=30, azure_hello=40, azure_chain=100, azure_http=40),
    "quick": Scale(hello=60, chain=100, fan=(100, 1000), http=60, repeats=1, samples=2, wake_idle=1.5,
                   large_timeout=30, floor_budget=8, azure_hello=10, azure_chain=20, azure_http=10),
    "tiny": Scale(hello=8, chain=10, fan=(20, 200), http=8, repeats=1, samples=1, wake_idle=0.1,
                  large_timeout=20, floor_budget=2, azure_hello=4, azure_chain=5, azure_http=4),
}


@dataclass
class Job:
    module: str  # benchmarks.inproc or benchmarks.procs
    spec: dict[str, Any]
    repeats: int
    results: list[dict[str, Any]] = field(default_factory=list)
    skip_after_timeout: list[Job] = field(default_factory=list)  # pointless once this one timed out

    @property
    def key(self) -> tuple[str, str, int]:
        return self.spec["workload"], self.spec["store"], int(self.spec.get("size", 0))

    @property
    def label(self) -> str:
        size = f" x{self.spec['size']}" if "size" in self.spec else ""
        return f"{self.spec['workload']}{size} on {self.spec['store']}"


def plan(scale: Scale, stores: list[str], repeats: int) -> list[Job]:
    jobs: list[Job] = []
    for store in stores:
        azure = store == "azure"
        hello, chain, http = ((scale.azure_hello, scale.azure_chain, scale.azure_http) if azure
                              else (scale.hello, scale.chain, scale.http))
        common = {"store": store, "floor_budget": scale.floor_budget, "timeout": 300}
        jobs += [Job("benchmarks.inproc", {**common, "workload": "hello_cities", "size": hello}, repeats),
                 Job("benchmarks.inproc", {**common, "workload": "chain", "size": chain}, repeats),
                 Job("benchmarks.inproc", {**common, "workload": "fan_out", "size": scale.fan[0],
                                           "timeout": scale.large_timeout * (2 if azure else 1)}, repeats)]
        if not azure:
            jobs.append(Job("benchmarks.inproc", {**common, "workload": "fan_out", "size": scale.fan[1],
                                                  "timeout": scale.large_timeout}, max(1, repeats - 1)))
        jobs += [Job("benchmarks.procs", {**common, "workload": "http", "size": http, "concurrency": 32}, repeats),
                 Job("benchmarks.procs", {**common, "workload": "startup", "samples": scale.samples}, repeats),
                 Job("benchmarks.inproc", {**common, "workload": "wake", "samples": scale.samples,
                                           "idle": scale.wake_idle if azure else min(scale.wake_idle, 0.5)}, 1)]
    large = [j for j in jobs if j.spec["workload"] == "fan_out" and j.spec["size"] == scale.fan[1]]
    for first, later in zip(large, large[1:]):  # the large fan-out repeats what a timeout already showed
        first.skip_after_timeout.append(later)
    return jobs


def run_job(job: Job, env: dict[str, str], number: int) -> dict[str, Any]:
    spec = dict(job.spec)
    if spec["store"] == "azure":
        env = {**env, "AzureFunctionsJobHost__extensions__durableTask__hubName": f"Bench{os.getpid()}x{number}"}
    grace = 60.0
    begin = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", job.module, json.dumps(spec)], cwd=ROOT, env=env, text=True,
                              capture_output=True, timeout=spec.get("timeout", 300) + grace)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"killed after {spec.get('timeout', 300) + grace:.0f} s"}
    found = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**spec, "error": f"exit {done.returncode}: {tail[0][:300]}"}
    result: dict[str, Any] = json.loads(found[-1][len(RESULT_PREFIX):])
    result["process_seconds"] = time.perf_counter() - begin
    return result


def execute(jobs: list[Job], env: dict[str, str]) -> None:
    skipped: set[int] = set()
    number = 0
    for repeat in range(max(job.repeats for job in jobs)):
        for job in jobs:
            if repeat >= job.repeats or id(job) in skipped:
                continue
            number += 1
            result = run_job(job, env, number)
            job.results.append(result)
            status = result.get("error") or f"{result.get('process_seconds', 0):.1f} s"
            print(f"[{time.strftime('%H:%M:%S')}] {job.label} #{repeat + 1}: {status}", file=sys.stderr, flush=True)
            if "timed out" in result.get("error", ""):
                skipped.add(id(job))
                for later in job.skip_after_timeout:
                    skipped.add(id(later))
                    later.results.append({**later.spec, "error": f"not run: {job.label} timed out"})


def build_rows(jobs: list[Job], scale: Scale, stores: list[str]) -> list[report.Row]:
    runs: report.Runs = {job.key: job.results for job in jobs}
    rows: list[report.Row] = []
    for store in stores:
        azure = store == "azure"
        rows += report.hello_rows(runs, store, scale.azure_hello if azure else scale.hello)
        rows += report.chain_rows(runs, store, scale.azure_chain if azure else scale.chain)
        rows += report.fan_rows(runs, store, *scale.fan)
        rows += report.http_rows(runs, store, scale.azure_http if azure else scale.http,
                                 scale.azure_hello if azure else scale.hello)
        rows += report.startup_rows(runs, store)
        rows += report.wake_rows(runs, store)
    if "azure" in stores:
        rows += report.azure_vs_sqlite(runs, scale.hello, scale.azure_hello)
    return rows


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(), "cpu": model, "python": platform.python_version(), "platform": platform.platform(),
        "azure_functions_durable": _version("azure-functions-durable"), "azure_functions": _version("azure-functions"),
        "commit": _git("rev-parse", "--short", "HEAD"), "uncommitted_changes": bool(_git("status", "--porcelain")),
        "load_average_at_start": os.getloadavg()[0],
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def start_azurite(workdir: Path) -> tuple[Any, str]:
    """(Azurite handle, "") when the azure store can run here, else (None, why not)."""
    try:
        import funcemu.durable.store.azure  # noqa: F401
        from funcemu.testing import azurite
    except ImportError as error:
        return None, f"the azure store cannot be imported ({error})"
    executable = next((p for p in (ROOT / "node_modules/.bin/azurite", Path("/tmp/az/node_modules/.bin/azurite"))
                       if p.exists()), None) or azurite.find_executable(ROOT)
    if executable is None:
        return None, "no Azurite executable (npm install, or /tmp/az/node_modules/.bin/azurite)"
    try:
        return azurite.start(executable, workdir), ""
    except Exception as error:  # reported, and the azure store skipped
        return None, f"Azurite did not start: {str(error).splitlines()[0]}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, one repeat (about a minute)")
    size.add_argument("--tiny", action="store_true", help="the smallest sizes (a smoke test, not a measurement)")
    parser.add_argument("--stores", default=",".join(STORES),
                        help="comma-separated: memory,sqlite,azure (azure is skipped when Azurite is unavailable)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per workload (median reported)")
    parser.add_argument("--json", type=Path, default=None, help="also write the table and raw runs here")
    args = parser.parse_args(argv)
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = sorted(set(args.stores) - set(STORES))
    if unknown:
        parser.error(f"unknown store(s) {', '.join(unknown)}; choose from {', '.join(STORES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    scale = SCALES[mode]
    repeats = args.repeats or scale.repeats
    info = machine()
    began = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    skipped: dict[str, str] = {}
    azurite_handle = None
    with tempfile.TemporaryDirectory(prefix="funcemu-bench-azurite-") as workdir:
        stores = list(args.stores)
        if "azure" in stores:
            azurite_handle, why = start_azurite(Path(workdir))
            if azurite_handle is None:
                stores.remove("azure")
                skipped["azure"] = why
                print(f"skipping the azure store: {why}", file=sys.stderr)
            else:
                env["AzureWebJobsStorage"] = azurite_handle.connection_string
        try:
            jobs = plan(scale, stores, repeats)
            execute(jobs, env)
        finally:
            if azurite_handle is not None:
                azurite_handle.stop()
    rows = build_rows(jobs, scale, stores)
    info["load_average_at_end"] = os.getloadavg()[0]
    command = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(render(rows, info, mode, repeats, command.strip(), skipped, time.perf_counter() - began))
    if args.json:
        args.json.write_text(json.dumps({
            "command": command.strip(), "mode": mode, "repeats": repeats, "machine": info, "skipped_stores": skipped,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seconds": time.perf_counter() - began, "rows": [r.as_dict() for r in rows],
            "runs": [r for job in jobs for r in job.results]}, indent=1))
    return 0


def render(rows: list[report.Row], info: dict[str, Any], mode: str, repeats: int, command: str,
           skipped: dict[str, str], seconds: float) -> str:
    judged = [r for r in rows if r.result]
    passed = sum(r.result == "PASS" for r in judged)
    lines = [
        f"funcemu benchmarks ({mode}, median of {repeats} repeat(s)); {command}",
        f"machine: {info['cores']} cores ({info['usable_cores']} usable) {info['cpu']}; Python {info['python']}; "
        f"azure-functions-durable {info['azure_functions_durable']}; commit {info['commit']}"
        f"{' + uncommitted changes' if info['uncommitted_changes'] else ''}; load average "
        f"{info['load_average_at_start']:.1f} -> {info['load_average_at_end']:.1f}; took {seconds:.0f} s",
        "", report.table(rows), "",
        f"targets: {passed} PASS, {len(judged) - passed} MISS"
        + ("" if mode == "full" else " (targets are set for the full sizes; this run is indicative)"),
    ]
    lines += [f"skipped store {store}: {why}" for store, why in skipped.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
