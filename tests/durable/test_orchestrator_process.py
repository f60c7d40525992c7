"""`funcemu start --orchestrator-process`: orchestrator code runs in a child process, with the same
results, failures and console output as in process, and a host that replaces a child that dies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from durable_support import WEBHOOK, start_id, unique, wait_status
from support import HostProcess

APP = Path(__file__).parent / "apps" / "process_app"


def launch(data_dir: Path, storage: str, *flags: str) -> HostProcess:
    return HostProcess(APP, "--storage", storage, "--data-dir", str(data_dir), *flags).start()


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    started = launch(tmp_path_factory.mktemp("process"), request.param, "--orchestrator-process")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def in_process_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    started = launch(tmp_path_factory.mktemp("in-process"), "memory")
    try:
        yield started
    finally:
        started.stop()


def run(host: HostProcess, name: str, value: Any = None) -> dict[str, Any]:
    return wait_status(host, start_id(host, name, value, unique(name)))


def test_a_chain_runs_in_another_process_and_logs_through_the_host(host: HostProcess) -> None:
    mark = len(host.lines)

    done = run(host, "greet_all", ["Tokyo", "Paris"])

    assert done["runtimeStatus"] == "Completed", done
    assert done["output"] == ["Hello Tokyo", "Hello Paris"]  # GREETING from local.settings.json
    pid = int(host.wait_for_log(r"\] orchestrator pid (\d+)$", since=mark).group(1))
    assert host.proc is not None and pid != host.proc.pid
    host.wait_for_log(r"^\[\S+Z\] greeting 2 names$", since=mark)


def test_an_orchestrator_waits_for_an_event_in_the_other_process(host: HostProcess) -> None:
    instance_id = start_id(host, "approval", None, unique("approval"))
    wait_status(host, instance_id, "Running")

    assert host.call("POST", f"{WEBHOOK}/instances/{instance_id}/raiseEvent/Approval", "yes").status == 202

    done = wait_status(host, instance_id)
    assert (done["runtimeStatus"], done["output"]) == ("Completed", "decided: yes")


def test_a_failure_reads_exactly_as_in_process(host: HostProcess, in_process_host: HostProcess) -> None:
    apart, together = run(host, "fails"), run(in_process_host, "fails")

    assert apart["runtimeStatus"] == together["runtimeStatus"] == "Failed"
    assert apart["output"] == together["output"]
    assert apart["output"] == "Orchestrator function 'fails' failed: the order has no items"
    failed = [row for row in apart["historyEvents"] if row["EventType"] == "ExecutionCompleted"]
    assert "the order has no items" in failed[0]["FailureDetails"]["ErrorMessage"]


def test_a_process_that_dies_is_replaced_and_the_episode_runs_again(host: HostProcess, tmp_path: Path) -> None:
    mark = len(host.lines)

    done = run(host, "exits_once", str(tmp_path / "marker"))

    assert (done["runtimeStatus"], done["output"]) == ("Completed", "Hello again"), host.log[-3000:]
    host.wait_for_log(r"The orchestrator process exited \(code 7\); starting a new one", since=mark)
    assert (tmp_path / "marker").read_text() == "crashed once"


def test_the_determinism_warning_comes_back_from_the_other_process(host: HostProcess) -> None:
    mark = len(host.lines)

    assert run(host, "reads_the_clock")["output"] is True

    host.wait_for_log(r"Orchestrator 'reads_the_clock' called datetime\.now\(\) while replaying", since=mark)
