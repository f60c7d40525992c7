"""The printed report: a header about the run and the machine, then the table of rows."""

from __future__ import annotations

from typing import Any

from benchmarks.report import Row


def render(
    rows: list[Row],
    info: dict[str, Any],
    mode: str,
    repeats: int,
    command: str,
    skipped: dict[str, str],
    seconds: float,
) -> str:
    judged = [r for r in rows if r.result]
    passed = sum(r.result == "PASS" for r in judged)
    lines = [
        f"funcemu benchmarks ({mode}, median of {repeats} repeat(s)); {command}",
        f"machine: {info['cores']} cores ({info['usable_cores']} usable) {info['cpu']}; Python {info['python']}; "
        f"azure-functions-durable {info['azure_functions_durable']}; commit {info['commit']}"
        f"{' + uncommitted changes' if info['uncommitted_changes'] else ''}; load average "
        f"{info['load_average_at_start']:.1f} -> {info['load_average_at_end']:.1f}; took {seconds:.0f} s",
        "",
        table(rows),
        "",
        f"targets: {passed} PASS, {len(judged) - passed} MISS"
        + ("" if mode == "full" else " (targets are set for the full sizes; this run is indicative)"),
    ]
    lines += [f"skipped store {store}: {why}" for store, why in skipped.items()]
    return "\n".join(lines)


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
    header = [
        "workload",
        "store",
        "figure",
        "funcemu",
        "baseline",
        "baseline value",
        "ratio",
        "target",
        "result",
        "note",
    ]
    lines = [
        [
            r.workload,
            r.store,
            r.figure,
            format_number(r.value, r.unit),
            r.baseline_name,
            format_number(r.baseline, r.unit),
            format_number(r.ratio),
            r.target,
            r.result,
            r.note,
        ]
        for r in rows
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=True)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, lines)])
