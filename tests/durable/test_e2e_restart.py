"""The durability claim, end to end: kill -9 the host while orchestrations run, start it again on the same
sqlite store, and every instance continues and completes. Activities in flight at the kill run again
(at-least-once); nothing completed before the kill runs again, and no orchestration step happens twice."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from durable_support import (
    assert_ran_once,
    executions,
    expected_steps,
    history_of,
    launch,
    raise_event,
    start_id,
    wait_status,
    wait_until,
)
from support import HostProcess

STEPS = [f"steps-{i}" for i in range(4)]
WAITER, TIMER, BUFFERED = "restart-waiter", "restart-timer", "restart-buffered"


def runs(gate: Path) -> list[str]:
    log = gate / "runs.log"
    return log.read_text().split() if log.exists() else []


def start_work(host: HostProcess) -> None:
    """Instances in every kind of wait: an activity in flight, an external event, a timer, a buffered event."""
    for key in STEPS:
        start_id(host, "durable_steps", key, key)
    start_id(host, "wait_event", {}, WAITER)
    start_id(host, "short_timer", 1.0, TIMER)
    start_id(host, "timer_then_event", 1.0, BUFFERED)
    assert raise_event(host, BUFFERED, "Early", "kept across the kill").status == 202


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    folder = tmp_path / "gate"
    folder.mkdir()
    return folder


def test_kill_9_while_orchestrations_run_loses_nothing(tmp_path: Path, gate: Path) -> None:
    data, env = tmp_path / "data", {"E2E_GATE_DIR": str(gate)}
    first = launch(data, "sqlite", env)
    try:
        start_work(first)
        wait_until(lambda: sorted(runs(gate)) == STEPS, 15, "every gated activity to be in flight")
        wait_status(first, WAITER, "Running")
        wait_status(first, TIMER, "Running")
    finally:
        first.stop(signal.SIGKILL)
    assert first.proc is not None and first.proc.returncode == -signal.SIGKILL
    assert executions(first, "double") == 2 * len(STEPS)

    (gate / "open").touch()
    second = launch(data, "sqlite", env)
    try:
        assert raise_event(second, WAITER, "Approval", "after the kill").status == 202
        results = {key: wait_status(second, key) for key in [*STEPS, WAITER, TIMER, BUFFERED]}
    finally:
        second.stop()

    for key in STEPS:
        assert results[key]["runtimeStatus"] == "Completed", results[key]
        assert results[key]["output"] == expected_steps(key)
        assert_ran_once(results[key], completed_tasks=2 + 1 + 5)
    assert sorted(runs(gate)) == sorted(STEPS * 2), "each in-flight activity runs again after the restart"
    assert executions(second, "gated") == len(STEPS)
    assert executions(second, "double") == 5 * len(STEPS), "activities completed before the kill ran again"
    assert executions(second, "hello") == len(STEPS)
    assert results[WAITER]["output"] == {"approved": '"after the kill"'}
    assert results[BUFFERED]["output"] == '"kept across the kill"'
    timer_row = history_of(results[TIMER], "TimerFired")
    assert results[TIMER]["runtimeStatus"] == "Completed" and len(timer_row) == 1
    for key in (WAITER, TIMER, BUFFERED):
        assert_ran_once(results[key], completed_tasks=0)


def test_a_second_restart_finds_everything_finished(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = launch(data, "sqlite")
    try:
        ids = [start_id(first, "chain", ["x"], f"done-{i}") for i in range(3)]
        for instance_id in ids:
            wait_status(first, instance_id)
        mark = len(first.lines)
    finally:
        first.stop(signal.SIGKILL)
    assert executions(first, "chain", mark) == 0

    second = launch(data, "sqlite")
    try:
        again = [wait_status(second, instance_id) for instance_id in ids]
        listed = second.call("GET", "/runtime/webhooks/durabletask/instances?instanceIdPrefix=done-").json()
    finally:
        second.stop()

    assert [payload["output"] for payload in again] == [["Hello x"]] * 3
    assert sorted(row["instanceId"] for row in listed) == ids
    assert executions(second, "chain") == 0 and executions(second, "hello") == 0
