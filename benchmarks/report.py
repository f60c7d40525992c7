"""From raw runs to the table: each figure beside its baseline, the ratio, the target, PASS or MISS.

Values are medians over the repeats. A ratio is the median of the ratios of each repeat (a figure and
its baseline are measured in the same process, one after the other), so it can differ slightly from
value / baseline of the medians.
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
FAN_TARGETS = {"wall": at_most(3.0), "rss": below(400, "MB"), "scaling": at_most(12.0)}
STARTUP_TARGET = below(1.0, "s")
AZURE_HELLO_TARGET = at_least(0.30)
WAKE_TARGET = below(100, "ms")


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ok_runs(runs: list[Run]) -> list[Run]:
    return [run for run in runs if "error" not in run]


def errors(runs: list[Run]) -> str:
    return "; ".join(sorted({run["error"] for run in runs if "error" in run}))


def row(workload: str, store: str, figure: str, unit: str, baseline_name: str, runs: list[Run],
        value: Callable[[Run], float], baseline: Callable[[Run], float] | None,
        ratio: Callable[[Run], float] | None = None, target: Target | None = None, note: str = "") -> Row:
    good = ok_runs(runs)
    made = Row(workload, store, figure, median([value(r) for r in good]), unit, baseline_name,
               median([baseline(r) for r in good]) if baseline else None,
               median([ratio(r) for r in good]) if ratio else None, note=note)
    if not good:
        made.note = errors(runs) or "not run"
    elif len(good) < len(runs):
        made.note = (made.note + "; " if made.note else "") + f"{len(runs) - len(good)} repeat(s) failed: {errors(runs)}"
    return judge(made, target)


def judge(made: Row, target: Target | None) -> Row:
    if target is None:
        return made
    made.target = target.text
    number = made.ratio if target.on == "ratio" else made.value
    made.result = "MISS" if number is None else ("PASS" if target.check(number) else "MISS")
    return made


def floor_note(runs: list[Run]) -> str:
    sampled = [r for r in ok_runs(runs) if r["floor"]["sampled"]]
    if not sampled:
        return ""
    r = sampled[0]
    return f"floor estimated from {r['floor']['timed_episodes']} of {r['floor']['episodes']} episodes"


def hello_rows(runs: Runs, store: str, size: int) -> list[Row]:
    found = runs.get(("hello_cities", store, size), [])
    if not found:
        return []
    name = f"hello-cities x{size}"
    n = float(size)
    return [
        row(name, store, "throughput", "orch/s", "SDK floor", found, lambda r: n / r["wall"],
            lambda r: n / r["floor"]["seconds"], lambda r: r["floor"]["seconds"] / r["wall"],
            HELLO_TARGETS.get(store), note=_episodes_note(found)),
        row(name, store, "throughput", "orch/s", "direct activity calls", found, lambda r: n / r["wall"],
            lambda r: n / r["direct_seconds"], lambda r: r["direct_seconds"] / r["wall"]),
    ]


def chain_rows(runs: Runs, store: str, size: int) -> list[Row]:
    found = runs.get(("chain", store, size), [])
    if not found:
        return []
    name, steps = f"chain of {size}", float(size)
    return [
        row(name, store, "per-hop latency", "ms", "SDK floor", found, lambda r: r["wall"] / steps * 1e3,
            lambda r: r["floor"]["seconds"] / steps * 1e3, lambda r: r["wall"] / r["floor"]["seconds"],
            CHAIN_TARGET if store != "azure" else None, note=_episodes_note(found)),
        row(name, store, "per-hop latency", "ms", "direct activity calls", found, lambda r: r["wall"] / steps * 1e3,
            lambda r: r["direct_seconds"] / steps * 1e3, lambda r: r["wall"] / r["direct_seconds"]),
    ]


def fan_rows(runs: Runs, store: str, small: int, large: int) -> list[Row]:
    rows: list[Row] = []
    for size in (small, large):
        found = runs.get(("fan_out", store, size), [])
        if not found:
            continue
        name, is_target = f"fan-out/fan-in {size}", store == "sqlite" and size == large
        note = "; ".join(filter(None, [_episodes_note(found), floor_note(found)]))
        rows.append(row(name, store, "wall time", "s", "SDK floor", found, lambda r: r["wall"],
                        lambda r: r["floor"]["seconds"], lambda r: r["wall"] / r["floor"]["seconds"],
                        FAN_TARGETS["wall"] if is_target else None, note=note))
        rows.append(row(name, store, "peak RSS", "MB", "idle host RSS", found, lambda r: r["rss_mb"],
                        lambda r: r["idle_rss_mb"], lambda r: r["rss_mb"] / r["idle_rss_mb"],
                        FAN_TARGETS["rss"] if is_target else None))
    small_runs, large_runs = runs.get(("fan_out", store, small), []), runs.get(("fan_out", store, large), [])
    if small_runs and large_runs:
        rows.append(_scaling_row(store, small, large, small_runs, large_runs))
    return rows


def _scaling_row(store: str, small: int, large: int, small_runs: list[Run], large_runs: list[Run]) -> Row:
    small_wall = median([r["wall"] for r in ok_runs(small_runs)])
    large_wall = median([r["wall"] for r in ok_runs(large_runs)])
    linear = large / small
    made = Row(f"fan-out {large} / {small}", store, "time ratio", None, "x", "linear", linear, None)
    if small_wall and large_wall:
        made.value = large_wall / small_wall
        made.ratio = made.value
    else:
        made.note = errors(large_runs) or errors(small_runs)
        timeouts = [r.get("timeout") for r in large_runs if "timed out" in r.get("error", "")]
        if small_wall and timeouts:
            made.note += f"; so > {timeouts[0] / small_wall:.0f}x"
    return judge(made, FAN_TARGETS["scaling"] if store == "sqlite" else None)


def _episodes_note(runs: list[Run]) -> str:
    good = ok_runs(runs)
    if not good:
        return ""
    r = good[0]
    return f"{r['floor']['episodes'] / r['instances']:.0f} episodes/instance"


def http_rows(runs: Runs, store: str, size: int, hello_size: int) -> list[Row]:
    found = runs.get(("http", store, size), [])
    if not found:
        return []
    name, n = f"HTTP starts x{size}", float(size)
    in_process = ok_runs(runs.get(("hello_cities", store, hello_size), []))
    in_process_rate = median([hello_size / r["wall"] for r in in_process])
    good = ok_runs(found)
    latency = (f"start latency p50 {median([r['start_p50'] for r in good]) * 1e3:.0f} ms, "
               f"p95 {median([r['start_p95'] for r in good]) * 1e3:.0f} ms, {good[0]['concurrency']} clients"
               if good else "")
    end_to_end = row(name, store, "end-to-end throughput", "orch/s", "in-process hello-cities", found,
                     lambda r: n / r["seconds"], None, note=latency)
    if end_to_end.value is not None and in_process_rate:
        end_to_end.baseline, end_to_end.ratio = in_process_rate, end_to_end.value / in_process_rate
    return [end_to_end,
            row(name, store, "start requests", "req/s", "plain HTTP function", found, lambda r: n / r["start_seconds"],
                lambda r: n / r["ping_seconds"], lambda r: r["ping_seconds"] / r["start_seconds"])]


def startup_rows(runs: Runs, store: str) -> list[Row]:
    found = runs.get(("startup", store, 0), [])
    if not found:
        return []
    app = ok_runs(found)[0]["app"] if ok_runs(found) else "?"
    name = "startup (reference app)" if app == "." else f"startup ({app})"
    samples = [s for r in ok_runs(found) for s in r["samples"]]
    floors = [s for r in ok_runs(found) for s in r["import_floor_samples"]]
    made = Row(name, store, "spawn to ready status", median(samples), "s", "python + SDK imports", median(floors),
               None, note=f"{len(samples)} samples")
    if made.value is not None and made.baseline:
        made.ratio = made.value / made.baseline
    if not samples:
        made.note = errors(found)
    return [judge(made, STARTUP_TARGET if store != "azure" else None)]


def wake_rows(runs: Runs, store: str) -> list[Row]:
    found = runs.get(("wake", store, 0), [])
    if not found:
        return []
    samples = [s * 1e3 for r in ok_runs(found) for s in r["samples"]]
    memory = [s * 1e3 for r in ok_runs(runs.get(("wake", "memory", 0), [])) for s in r["samples"]]
    idle = ok_runs(found)[0]["idle"] if ok_runs(found) else 0
    made = Row("wake idle instance", store, f"event to completed (after {idle:g} s idle)", median(samples), "ms",
               "memory store", median(memory), None, note=f"{len(samples)} samples")
    if made.value is not None and made.baseline:
        made.ratio = made.value / made.baseline
    if not samples:
        made.note = errors(found)
    return [judge(made, WAKE_TARGET if store == "azure" else None)]


def azure_vs_sqlite(runs: Runs, hello_size: int, azure_size: int) -> list[Row]:
    azure = ok_runs(runs.get(("hello_cities", "azure", azure_size), []))
    sqlite = ok_runs(runs.get(("hello_cities", "sqlite", hello_size), []))
    if not runs.get(("hello_cities", "azure", azure_size)):
        return []
    made = Row(f"hello-cities x{azure_size}", "azure", "throughput", median([azure_size / r["wall"] for r in azure]),
               "orch/s", "sqlite store", median([hello_size / r["wall"] for r in sqlite]), None)
    if made.value is not None and made.baseline:
        made.ratio = made.value / made.baseline
    else:
        made.note = errors(runs.get(("hello_cities", "azure", azure_size), []))
    return [judge(made, AZURE_HELLO_TARGET)]


def format_number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    text = f"{value:.3g}" if magnitude < 100 else f"{value:,.0f}"
    if magnitude < 0.01 and magnitude:
        text = f"{value:.1e}"
    return f"{text} {unit}".strip()


def table(rows: list[Row]) -> str:
    """A Markdown table (readable in a terminal too)."""
    header = ["workload", "store", "figure", "funcemu", "baseline", "baseline value", "ratio", "target", "result",
              "note"]
    lines = [[r.workload, r.store, r.figure, format_number(r.value, r.unit), r.baseline_name,
              format_number(r.baseline, r.unit), format_number(r.ratio), r.target, r.result, r.note] for r in rows]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=True)]

    def render(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([render(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(render, lines)])
