"""What a benchmark run needs to know about where it runs: the machine, the code, and Azurite."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AZURITE_PLACES = (ROOT / "node_modules/.bin/azurite", Path("/tmp/az/node_modules/.bin/azurite"))


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "azure_functions_durable": _version("azure-functions-durable"),
        "azure_functions": _version("azure-functions"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain")),
        "load_average_at_start": os.getloadavg()[0],
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def start_azurite(workdir: Path) -> tuple[Any, str]:
    """(Azurite handle, "") when the azure store can run here, else (None, why not)."""
    check = subprocess.run(
        [sys.executable, "-c", "import funcemu.durable.store.azure"], cwd=ROOT, capture_output=True, text=True
    )  # not here: the SDKs would weigh on every child
    if check.returncode:
        return (
            None,
            f"the azure store cannot be imported ({(check.stderr.strip().splitlines() or ['?'])[-1]})",
        )
    from funcemu.testing import azurite

    executable = next(
        (p for p in AZURITE_PLACES if p.exists()),
        None,
    ) or azurite.find_executable(ROOT)
    if executable is None:
        return None, "no Azurite executable (npm install, or /tmp/az/node_modules/.bin/azurite)"
    try:
        return azurite.start(executable, workdir), ""
    except Exception as error:  # reported, and the azure store skipped
        return None, f"Azurite did not start: {str(error).splitlines()[0]}"
