"""The benchmark runner completes at its smallest sizes on the memory store and writes its JSON.

Checks the plumbing only (every workload ran, every row has a figure), never a timing.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"hello_cities", "chain", "fan_out", "fan_out_scaling", "http", "startup", "wake"}


def test_tiny_run_on_memory_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--tiny", "--stores", "memory", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["mode"] == "tiny" and report["machine"]["cores"] >= 1
    failed = [run for run in report["runs"] if "error" in run]
    assert not failed, failed
    rows = report["rows"]
    assert {row["kind"] for row in rows} == KINDS
    assert all(row["value"] is not None for row in rows), [row for row in rows if row["value"] is None]
    assert "| workload" in done.stdout and "targets:" in done.stdout
