"""From raw runs to the table: each figure beside its baseline, the ratio, the target, PASS or MISS.

Every ratio is funcemu / baseline in the row's unit (so for a throughput, higher is better; for a time,
lower is better). Values are medians over the repeats. Where a figure and its baseline come from the same
run (the SDK floor, direct calls, peak RSS), the ratio is the median of the per-run ratios, which can
differ slightly from the ratio of the medians; elsewhere it is the ratio of the medians. The fan-out
scaling row divides time(large) / time(small) by the linear ratio large / small.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

Run = dict[str, Any]
Runs = dict[tuple[str, str, int], list[Run]]  # (workload, store, size) -> one result per repeat


@dataclass
class Target:
    text: str  # as printed: ">= 0.85", "< 400 MB"
    check: Callable[[float], bool]
    on: str = "ratio"  # which number it checks: "ratio" or "value"


@dataclass
class Row:
    kind: str  # the workload's key: hello_cities, chain, fan_out, fan_out_scaling, http, startup, wake
    workload: str
    store: str
    figure: str
    value: float | None
    unit: str
    baseline_name: str
    baseline: float | None
    ratio: float | None
    target: str = ""
    result: str = ""  # PASS, MISS, or "" without a target
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def at_least(limit: float) -> Target:
    return Target(f">= {limit:g}", lambda x: x >= limit)


def at_most(limit: float, on: str = "ratio", unit: str = "") -> Target:
    return Target(f"<= {limit:g}{unit}", lambda x: x <= limit, on)


def below(limit: float, unit: str) -> Target:
    return Target(f"< {limit:g} {unit}", lambda x: x < limit, "value")


HELLO_TARGETS = {"memory": at_least(0.85), "sqlite": at_least(0.70)}
CHAIN_TARGET = at_most(1.3)
FAN_TARGETS = {"wall": at_most(3.0), "rss": below(400, "MB"), "scaling": at_most(12.0, "value", " x")}
STARTUP_TARGET = below(1.0, "s")
AZURE_HELLO_TARGET = at_least(0.30)
WAKE_TARGET = below(100, "ms")


PROCESS_SUFFIX = " +process"


def store_label(store: str, orchestrator_process: bool) -> str:
    """The row's store: `sqlite`, or `sqlite +process` for orchestrator code in a child process."""
    return store + PROCESS_SUFFIX if orchestrator_process else store


def base_store(label: str) -> str:
    return label.removesuffix(PROCESS_SUFFIX)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ok_runs(runs: list[Run]) -> list[Run]:
    return [run for run in runs if "error" not in run]


def errors(runs: list[Run]) -> str:
    return "; ".join(sorted({run["error"] for run in runs if "error" in run}))


def judge(made: Row, target: Target | None) -> Row:
    if target is None:
        return made
    made.target = target.text
    number = made.ratio if target.on == "ratio" else made.value
    made.result = "MISS" if number is None else ("PASS" if target.check(number) else "MISS")
    return made


def paired(
    kind: str,
    workload: str,
    store: str,
    figure: str,
    unit: str,
    baseline_name: str,
    runs: list[Run],
    value: Callable[[Run], float],
    baseline: Callable[[Run], float],
    target: Target | None = None,
    note: str = "",
) -> Row:
    """A figure and its baseline from the same runs; the ratio is the median of value / baseline per run."""
    good = ok_runs(runs)
    made = Row(
        kind,
        workload,
        store,
        figure,
        median([value(r) for r in good]),
        unit,
        baseline_name,
        median([baseline(r) for r in good]),
        median([value(r) / baseline(r) for r in good]),
        note=note,
    )
    if good and len(good) < len(runs):
        made.note = "; ".join(
            filter(None, [made.note, f"{len(runs) - len(good)} repeat(s) failed: {errors(runs)}"])
        )
    return _finished(made, runs, target)


def unpaired(
    kind: str,
    workload: str,
    store: str,
    figure: str,
    unit: str,
    baseline_name: str,
    values: list[float],
    baselines: list[float],
    failed: list[Run],
    target: Target | None = None,
    note: str = "",
) -> Row:
    """A figure and a baseline from different runs: the ratio of the medians."""
    value, base = median(values), median(baselines)
    ratio = value / base if value is not None and base else None
    made = Row(kind, workload, store, figure, value, unit, baseline_name, base, ratio, note=note)
    return _finished(made, failed, target)


def _finished(made: Row, runs: list[Run], target: Target | None) -> Row:
    """A row without a value notes why (the runs' errors), then is judged against its target."""
    if made.value is None:
        made.note = errors(runs) or "not run"
    return judge(made, target)


def _episodes_note(runs: list[Run]) -> str:
    good = ok_runs(runs)
    if not good:
        return ""
    floor = good[0]["floor"]
    note = f"{floor['episodes'] / good[0]['instances']:.0f} episodes/instance"
    if floor["sampled"]:
        note += f"; floor estimated from {floor['timed_episodes']} of {floor['episodes']} episodes"
    return note


def hello_rows(runs: Runs, store: str, size: int) -> list[Row]:
    found = runs.get(("hello_cities", store, size), [])
    if not found:
        return []
    name, n = f"hello-cities x{size}", float(size)
    return [
        paired(
            "hello_cities",
            name,
            store,
            "throughput",
            "orch/s",
            "SDK floor",
            found,
            lambda r: n / r["wall"],
            lambda r: n / r["floor"]["seconds"],
            HELLO_TARGETS.get(base_store(store)),
            _episodes_note(found),
        ),
        paired(
            "hello_cities",
            name,
            store,
            "throughput",
            "orch/s",
            "direct activity calls",
            found,
            lambda r: n / r["wall"],
            lambda r: n / r["direct_seconds"],
        ),
    ]


def chain_rows(runs: Runs, store: str, size: int) -> list[Row]:
    found = runs.get(("chain", store, size), [])
    if not found:
        return []
    name, per_hop = f"chain of {size}", 1e3 / size
    target = CHAIN_TARGET if store != "azure" else None
    return [
        paired(
            "chain",
            name,
            store,
            "per-hop latency",
            "ms",
            "SDK floor",
            found,
            lambda r: r["wall"] * per_hop,
            lambda r: r["floor"]["seconds"] * per_hop,
            target,
            _episodes_note(found),
        ),
        paired(
            "chain",
            name,
            store,
            "per-hop latency",
            "ms",
            "direct activity calls",
            found,
            lambda r: r["wall"] * per_hop,
            lambda r: r["direct_seconds"] * per_hop,
        ),
    ]


def fan_rows(runs: Runs, store: str, small: int, large: int) -> list[Row]:
    rows: list[Row] = []
    for size in (small, large):
        found = runs.get(("fan_out", store, size), [])
        if not found:
            continue
        name, is_target = f"fan-out/fan-in {size}", store == "sqlite" and size == large
        rows.append(
            paired(
                "fan_out",
                name,
                store,
                "wall time",
                "s",
                "SDK floor",
                found,
                lambda r: r["wall"],
                lambda r: r["floor"]["seconds"],
                FAN_TARGETS["wall"] if is_target else None,
                _episodes_note(found),
            )
        )
        rows.append(
            paired(
                "fan_out",
                name,
                store,
                "peak RSS",
                "MB",
                "idle host RSS",
                found,
                lambda r: r["rss_mb"],
                lambda r: r["idle_rss_mb"],
                FAN_TARGETS["rss"] if is_target else None,
            )
        )
        partial = [r["rss_mb_at_error"] for r in found if "rss_mb_at_error" in r]
        if rows[-1].value is None and partial:
            rows[-1].note += f"; peak RSS when it stopped: {max(partial):.0f} MB"
    small_runs, large_runs = runs.get(("fan_out", store, small), []), runs.get(("fan_out", store, large), [])
    if small_runs and large_runs:
        rows.append(_scaling_row(store, small, large, small_runs, large_runs))
    return rows


def _scaling_row(store: str, small: int, large: int, small_runs: list[Run], large_runs: list[Run]) -> Row:
    """time(large) / time(small) beside the linear ratio large / small."""
    small_wall = median([r["wall"] for r in ok_runs(small_runs)])
    large_wall = median([r["wall"] for r in ok_runs(large_runs)])
    made = Row(
        "fan_out_scaling",
        f"fan-out {large} / {small}",
        store,
        "time ratio",
        None,
        "x",
        "linear",
        large / small,
        None,
    )
    if small_wall and large_wall:
        made.value = large_wall / small_wall
        made.ratio = made.value / (large / small)
    else:
        made.note = errors(large_runs) or errors(small_runs)
        timeouts = [float(r["timeout"]) for r in large_runs if "timed out" in r.get("error", "")]
        if small_wall and timeouts:
            made.note += f"; so > {timeouts[0] / small_wall:.0f}x"
    return judge(made, FAN_TARGETS["scaling"] if store == "sqlite" else None)


def http_rows(runs: Runs, store: str, size: int, hello_size: int) -> list[Row]:
    found = runs.get(("http", store, size), [])
    if not found:
        return []
    name, n, good = f"HTTP starts x{size}", float(size), ok_runs(found)
    in_process = [hello_size / r["wall"] for r in ok_runs(runs.get(("hello_cities", store, hello_size), []))]
    note = ""
    if good:
        p50, p95 = median([r["start_p50"] for r in good]) or 0, median([r["start_p95"] for r in good]) or 0
        note = (
            f"start latency p50 {p50 * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms, {good[0]['concurrency']} clients"
        )
    return [
        unpaired(
            "http",
            name,
            store,
            "end-to-end throughput",
            "orch/s",
            "in-process hello-cities",
            [n / r["seconds"] for r in good],
            in_process,
            found,
            note=note,
        ),
        paired(
            "http",
            name,
            store,
            "start requests",
            "req/s",
            "plain HTTP function",
            found,
            lambda r: n / r["start_seconds"],
            lambda r: n / r["ping_seconds"],
        ),
    ]


def startup_rows(runs: Runs, store: str) -> list[Row]:
    found = runs.get(("startup", store, 0), [])
    if not found:
        return []
    good = ok_runs(found)
    app = good[0]["app"] if good else "?"
    samples = [s for r in good for s in r["samples"]]
    return [
        unpaired(
            "startup",
            "startup (reference app)" if app == "." else f"startup ({app})",
            store,
            "spawn to ready status",
            "s",
            "python + SDK imports",
            samples,
            [s for r in good for s in r["import_floor_samples"]],
            found,
            STARTUP_TARGET if store != "azure" else None,
            f"{len(samples)} samples",
        )
    ]


def wake_rows(runs: Runs, store: str) -> list[Row]:
    found = runs.get(("wake", store, 0), [])
    if not found:
        return []
    good = ok_runs(found)
    samples = [s * 1e3 for r in good for s in r["samples"]]
    memory = [s * 1e3 for r in ok_runs(runs.get(("wake", "memory", 0), [])) for s in r["samples"]]
    if store == "memory":  # the baseline itself
        memory = []
    idle = good[0]["idle"] if good else 0
    return [
        unpaired(
            "wake",
            "wake idle instance",
            store,
            f"event to completed (after {idle:g} s idle)",
            "ms",
            "memory store" if store != "memory" else "",
            samples,
            memory,
            found,
            WAKE_TARGET if store == "azure" else None,
            f"{len(samples)} samples",
        )
    ]


def azure_vs_sqlite(runs: Runs, hello_size: int, azure_size: int) -> list[Row]:
    azure = runs.get(("hello_cities", "azure", azure_size), [])
    if not azure:
        return []
    sqlite = ok_runs(runs.get(("hello_cities", "sqlite", hello_size), []))
    return [
        unpaired(
            "azure_vs_sqlite",
            f"hello-cities x{azure_size}",
            "azure",
            "throughput",
            "orch/s",
            f"sqlite store (x{hello_size})",
            [azure_size / r["wall"] for r in ok_runs(azure)],
            [hello_size / r["wall"] for r in sqlite],
            azure,
            AZURE_HELLO_TARGET,
        )
    ]
