"""The pytest plugin as its users see it: an inner pytest run over the reference app, and its report."""

import subprocess
import sys
from pathlib import Path

import pytest

from funcemu.testing import Host

APP = Path(__file__).resolve().parents[2]

INNER_TESTS = """
import pytest

def test_fails_after_calling_the_app(funcemu):
    funcemu.post("/api/orders", {"orderId": "X"})
    assert False, "deliberate failure"

@pytest.mark.emulator_only
def test_only_on_the_emulator(funcemu):
    pass

def test_passes(durable_client):
    assert durable_client.status("nobody") is None
"""


def run_inner_pytest(folder: Path, *args: str) -> str:
    (folder / "test_inner.py").write_text(INNER_TESTS)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            *args,
            str(folder / "test_inner.py"),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=90,
    )
    return done.stdout + done.stderr


def test_a_failing_test_shows_the_host_log(tmp_path: Path) -> None:
    output = run_inner_pytest(tmp_path, "--funcemu-app", str(APP), "--funcemu-storage", "memory")

    assert "1 failed, 2 passed" in output
    assert "funcemu host log (http://127.0.0.1:" in output
    assert "Executing 'Functions.start_order'" in output


@pytest.mark.emulator_only
def test_a_running_host_skips_emulator_only_tests(tmp_path: Path, funcemu: Host) -> None:
    output = run_inner_pytest(tmp_path, "--funcemu-url", funcemu.url)

    assert "1 failed, 1 passed, 1 skipped" in output
    assert f"needs the funcemu emulator; testing {funcemu.url}" in output
    assert "funcemu host log" not in output


def test_a_host_that_cannot_start_is_reported_once(tmp_path: Path) -> None:
    output = run_inner_pytest(tmp_path, "--funcemu-app", str(APP), "--funcemu-arg=--no-such-option")

    assert "3 errors" in output
    assert output.count("funcemu host did not start: it exited with status") == 1
    assert "--no-such-option" in output
    assert "funcemu host did not start: see the first test that used it" in output
