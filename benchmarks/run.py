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
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402
from benchmarks.environment import machine, start_azurite  # noqa: E402
from benchmarks.inproc import RESULT_PREFIX  # noqa: E402
from benchmarks.render import render  # noqa: E402

STORES = ("memory", "sqlite", "azure")
WORKLOADS = ("hello_cities", "chain", "fan_out", "http", "startup", "wake")


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
    floor_passes: int  # whole passes over the episodes (median), budget permitting
    azure_hello: int
    azure_chain: int
    azure_http: int


SCALES = {
    "full": Scale(
        hello=300,
        chain=100,
        fan=(1000, 10000),
        http=200,
        repeats=3,
        samples=2,
        wake_idle=3.0,
        large_timeout=75,
        floor_budget=12,
        floor_passes=3,
        azure_hello=30,
        azure_chain=100,
        azure_http=40,
    ),
    "quick": Scale(
        hello=60,
        chain=100,
        fan=(50, 500),
        http=60,
        repeats=1,
        samples=2,
        wake_idle=1.5,
        large_timeout=30,
        floor_budget=6,
        floor_passes=1,
        azure_hello=10,
        azure_chain=20,
        azure_http=10,
    ),
    "tiny": Scale(
        hello=8,
        chain=10,
        fan=(20, 200),
        http=8,
        repeats=1,
        samples=1,
        wake_idle=0.1,
        large_timeout=20,
        floor_budget=2,
        floor_passes=1,
        azure_hello=4,
        azure_chain=5,
        azure_http=4,
    ),
}


@dataclass
class Job:
    module: str  # benchmarks.inproc or benchmarks.procs
    spec: dict[str, Any]
    repeats: int
    results: list[dict[str, Any]] = field(default_factory=list)
    skip_after_timeout: list[Job] = field(default_factory=list)  # pointless once this one timed out

    @property
    def store_label(self) -> str:
        return report.store_label(self.spec["store"], bool(self.spec.get("orchestrator_process")))

    @property
    def key(self) -> tuple[str, str, int]:
        return self.spec["workload"], self.store_label, int(self.spec.get("size", 0))

    @property
    def label(self) -> str:
        size = f" x{self.spec['size']}" if "size" in self.spec else ""
        return f"{self.spec['workload']}{size} on {self.store_label}"


def plan(scale: Scale, stores: list[str], repeats: int) -> list[Job]:
    """The jobs in execution order: sqlite first (most targets), Azure last and once (it is slow)."""
    jobs: list[Job] = []
    for store in sorted(stores, key=("sqlite", "memory", "azure").index):
        azure = store == "azure"
        times = 1 if azure and repeats > 1 else repeats
        common = {"store": store, "floor_budget": scale.floor_budget, "floor_passes": scale.floor_passes}

        def add(module: str, workload: str, count: int, base: dict[str, Any] = common, **spec: Any) -> None:
            jobs.append(
                Job(f"benchmarks.{module}", {**base, "workload": workload, "timeout": 300, **spec}, count)
            )

        add("inproc", "hello_cities", times, size=scale.azure_hello if azure else scale.hello)
        add("inproc", "chain", times, size=scale.azure_chain if azure else scale.chain)
        if not azure:  # the same two with orchestrator code in a child process (--orchestrator-process)
            add("inproc", "hello_cities", times, size=scale.hello, orchestrator_process=True)
            add("inproc", "chain", times, size=scale.chain, orchestrator_process=True)
        add("inproc", "fan_out", times, size=scale.fan[0], timeout=scale.large_timeout * (2 if azure else 1))
        if not azure:  # Azurite takes minutes for the large fan-out
            add("inproc", "fan_out", max(1, times - 1), size=scale.fan[1], timeout=scale.large_timeout)
        add("procs", "http", times, size=scale.azure_http if azure else scale.http, concurrency=32)
        add("procs", "startup", times, samples=scale.samples)
        add(
            "inproc",
            "wake",
            1,
            samples=scale.samples,
            idle=scale.wake_idle if azure else min(scale.wake_idle, 0.5),
        )
    large = [j for j in jobs if j.spec["workload"] == "fan_out" and j.spec["size"] == scale.fan[1]]
    for first, later in zip(large, large[1:], strict=False):  # a timeout here means a timeout there
        first.skip_after_timeout.append(later)
    return jobs


def run_job(job: Job, env: dict[str, str], number: int, azure_connection: str | None) -> dict[str, Any]:
    spec = dict(job.spec)
    if spec["store"] == "azure" and azure_connection:  # a fresh task hub per run
        env = {
            **env,
            "AzureWebJobsStorage": azure_connection,
            "AzureFunctionsJobHost__extensions__durableTask__hubName": f"Bench{os.getpid()}x{number}",
        }
    limit = spec.get("timeout", 300) + 2 * spec.get("floor_budget", 30) + 60  # host start/stop, the floor
    begin = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", job.module, json.dumps(spec)],
            cwd=ROOT,
            env=env,
            text=True,
            capture_output=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out: killed after {limit:.0f} s"}
    found = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**spec, "error": f"exit {done.returncode}: {tail[0][:300]}"}
    result: dict[str, Any] = json.loads(found[-1][len(RESULT_PREFIX) :])
    result["process_seconds"] = time.perf_counter() - begin
    return result


def execute(jobs: list[Job], env: dict[str, str], azure_connection: str | None) -> None:
    skipped: set[int] = set()
    number = 0
    for repeat in range(max(job.repeats for job in jobs)):
        for job in jobs:
            if repeat >= job.repeats or id(job) in skipped:
                continue
            number += 1
            result = run_job(job, env, number, azure_connection)
            job.results.append(result)
            status = result.get("error") or f"{result.get('process_seconds', 0):.1f} s"
            print(
                f"[{time.strftime('%H:%M:%S')}] {job.label} #{repeat + 1}: {status}",
                file=sys.stderr,
                flush=True,
            )
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
        if not azure:
            rows += report.hello_rows(runs, report.store_label(store, True), scale.hello)
        rows += report.chain_rows(runs, store, scale.azure_chain if azure else scale.chain)
        if not azure:
            rows += report.chain_rows(runs, report.store_label(store, True), scale.chain)
        rows += report.fan_rows(runs, store, *scale.fan)
        rows += report.http_rows(
            runs,
            store,
            scale.azure_http if azure else scale.http,
            scale.azure_hello if azure else scale.hello,
        )
        rows += report.startup_rows(runs, store)
        rows += report.wake_rows(runs, store)
    if "azure" in stores:
        rows += report.azure_vs_sqlite(runs, scale.hello, scale.azure_hello)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, one repeat (about a minute)")
    size.add_argument(
        "--tiny", action="store_true", help="the smallest sizes (a smoke test, not a measurement)"
    )
    parser.add_argument(
        "--stores",
        default=",".join(STORES),
        help="comma-separated: memory,sqlite,azure (azure is skipped when Azurite is unavailable)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="repeats per workload (median reported)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated workloads to run: hello_cities,chain,fan_out,http,startup,wake (default: all)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the table and raw runs here")
    args = parser.parse_args(argv)
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown_workloads = sorted(set(args.only) - set(WORKLOADS))
    if unknown_workloads:
        parser.error(
            f"unknown workload(s) {', '.join(unknown_workloads)}; choose from {', '.join(WORKLOADS)}"
        )
    unknown = sorted(set(args.stores) - set(STORES))
    if unknown:
        parser.error(f"unknown store(s) {', '.join(unknown)}; choose from {', '.join(STORES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    scale, repeats = SCALES[mode], args.repeats or SCALES[mode].repeats
    info, began = machine(), time.perf_counter()
    jobs, stores, skipped = run_all(args, scale, repeats)
    rows = build_rows(jobs, scale, stores)
    info["load_average_at_end"] = os.getloadavg()[0]
    command = " ".join(["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    seconds = time.perf_counter() - began
    print(render(rows, info, mode, repeats, command, skipped, seconds))
    if args.json:
        report_json = {
            "command": command,
            "mode": mode,
            "repeats": repeats,
            "machine": info,
            "skipped_stores": skipped,
            "seconds": seconds,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "rows": [r.as_dict() for r in rows],
            "runs": [r for job in jobs for r in job.results],
        }
        args.json.write_text(json.dumps(report_json, indent=1))
    return 0


def run_all(
    args: argparse.Namespace, scale: Scale, repeats: int
) -> tuple[list[Job], list[str], dict[str, str]]:
    """Every job, with Azurite started for the azure store (and the store skipped, with why, without it)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    stores, skipped, azurite = list(args.stores), {}, None
    with tempfile.TemporaryDirectory(prefix="funcemu-bench-azurite-") as workdir:
        if "azure" in stores:
            azurite, why = start_azurite(Path(workdir))
            if azurite is None:
                stores.remove("azure")
                skipped["azure"] = why
                print(f"skipping the azure store: {why}", file=sys.stderr)
        try:
            jobs = [
                job
                for job in plan(scale, stores, repeats)
                if not args.only or job.spec["workload"] in args.only
            ]
            execute(jobs, env, azurite.connection_string if azurite else None)
        finally:
            if azurite is not None:
                azurite.stop()
    return jobs, stores, skipped


if __name__ == "__main__":
    sys.exit(main())
