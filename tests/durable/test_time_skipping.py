"""`funcemu start --time-skipping`: durable time runs on a virtual clock that jumps to the next timer when
nothing else can run, or moves when a test advances it; without the flag, time is real."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support import HostProcess

from funcemu.durable.history import parse_time

REPO = Path(__file__).resolve().parents[2]
DURABLE_APP = Path(__file__).parent / "apps" / "durable_app"
WEBHOOK = "/runtime/webhooks/durabletask"
SEVENTY_TWO_HOURS = timedelta(hours=72)
APPROVAL = {"requester": "ada", "approver": "grace", "amount": 420.0, "description": "Conference ticket"}


@pytest.fixture(scope="module")
def skipping() -> Iterator[HostProcess]:
    with HostProcess(DURABLE_APP, "--storage", "memory", "--time-skipping") as host:
        yield host


def start(host: HostProcess, name: str, body: Any = None, instance_id: str | None = None) -> str:
    """Start over the management API. A number or string input goes as the Python client sends it, JSON
    text in a JSON string: a bare JSON number is an input the SDK cannot read (durable-protocol.md §0)."""
    body = body if body is None or isinstance(body, dict) else json.dumps(body)
    path = f"{WEBHOOK}/orchestrators/{name}" + (f"/{instance_id}" if instance_id else "")
    reply = host.call("POST", path, body)
    assert reply.status == 202, reply.text
    return str(reply.json()["id"])


def events(status: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [event for event in status["historyEvents"] if event["EventType"] == kind]


def clock(host: HostProcess, path: str = "", method: str = "GET") -> dict[str, Any]:
    reply = host.call(method, f"/admin/funcemu/clock{path}")
    assert reply.status == 200, reply.text
    return dict(reply.json())


def wait_for_timer(host: HostProcess, instance_id: str, timeout: float = 10) -> dict[str, Any]:
    """The instance is Running and has created its timer (deadline-bounded poll)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = host.call("GET", f"{WEBHOOK}/instances/{instance_id}?showHistory=true").json()
        if isinstance(status, dict) and events(status, "TimerCreated"):
            return dict(status)
        time.sleep(0.01)
    raise AssertionError(f"{instance_id} created no timer in {timeout}s:\n{host.log[-3000:]}")


def test_the_72_hour_approval_timeout_finishes_at_once_on_virtual_time() -> None:
    """The reference app's human-interaction pattern: nobody decides, the 72-hour deadline escalates."""
    with HostProcess(REPO, "--storage", "memory", "--time-skipping") as host:
        began = time.perf_counter()
        reply = host.call("POST", "/api/approvals", APPROVAL)
        assert reply.status == 202, reply.text
        final = host.wait_for(reply.json()["id"], timeout=10)
        wall = time.perf_counter() - began
        now = parse_time(clock(host)["now"])

    assert final["runtimeStatus"] == "Completed" and final["output"]["status"] == "escalated"
    assert wall < 2.0, f"the 72-hour timeout path took {wall:.2f}s of wall time"
    started = parse_time(events(final, "ExecutionStarted")[0]["Timestamp"])
    [created] = events(final, "TimerCreated")
    [fired] = events(final, "TimerFired")
    fire_at = parse_time(created["FireAt"])
    assert timedelta(0) <= fire_at - started - SEVENTY_TWO_HOURS < timedelta(seconds=1)
    assert parse_time(fired["FireAt"]) == fire_at
    assert timedelta(0) <= parse_time(fired["Timestamp"]) - fire_at < timedelta(seconds=1)
    [escalated] = [e for e in events(final, "TaskCompleted") if e["FunctionName"] == "escalate_approval"]
    assert parse_time(escalated["ScheduledTime"]) >= fire_at
    assert parse_time(events(final, "ExecutionCompleted")[0]["Timestamp"]) >= fire_at
    created_time, updated_time = parse_time(final["createdTime"]), parse_time(final["lastUpdatedTime"])
    assert abs(updated_time - created_time - SEVENTY_TWO_HOURS) <= timedelta(seconds=2)
    assert now >= fire_at


def test_current_utc_datetime_follows_the_virtual_clock(skipping: HostProcess) -> None:
    """A 10-day timer, longer than the 6-day maximum: the SDK splits it (durable-protocol.md §2.7)."""
    ten_days = 10 * 24 * 3600
    final = skipping.wait_for(start(skipping, "short_timer", ten_days), timeout=10)

    started = parse_time(events(final, "ExecutionStarted")[0]["Timestamp"])
    woke = datetime.fromisoformat(final["output"])
    assert timedelta(days=10) <= woke - started < timedelta(days=10, seconds=1)
    fired = [parse_time(e["Timestamp"]) for e in events(final, "TimerFired")]
    assert len(fired) == len(events(final, "TimerCreated")) == 3  # 3 days, 3 days, then the last 4
    assert fired == sorted(fired) and fired[-1] >= started + timedelta(days=10)


def test_a_test_can_turn_skipping_off_and_advance_by_hand(skipping: HostProcess) -> None:
    assert clock(skipping, "/autoskip?enabled=false", "POST")["autoSkip"] is False
    try:
        instance_id = start(skipping, "wait_event", {"timeout": 3600})
        fire_at = parse_time(events(wait_for_timer(skipping, instance_id), "TimerCreated")[0]["FireAt"])

        before = parse_time(clock(skipping)["now"])
        moved = parse_time(clock(skipping, "/advance?seconds=1800", "POST")["now"])
        assert moved - before >= timedelta(seconds=1800) and moved < fire_at
        assert skipping.call("GET", f"{WEBHOOK}/instances/{instance_id}").json()["runtimeStatus"] == "Running"

        clock(skipping, "/advance?seconds=1800", "POST")
        final = skipping.wait_for(instance_id, timeout=10)
    finally:
        clock(skipping, "/autoskip?enabled=true", "POST")

    assert final["output"] == "timed out"
    assert parse_time(events(final, "TimerFired")[0]["Timestamp"]) >= fire_at


def test_an_event_raised_while_a_long_timer_waits_wins_when_skipping_is_off(skipping: HostProcess) -> None:
    """The approval path: with automatic skipping off the test, not the clock, decides what comes first."""
    clock(skipping, "/autoskip?enabled=false", "POST")
    try:
        instance_id = start(skipping, "wait_event", {"timeout": 72 * 3600})
        wait_for_timer(skipping, instance_id)
        reply = skipping.call("POST", f"{WEBHOOK}/instances/{instance_id}/raiseEvent/Approval", {"ok": True})
        assert reply.status == 202
        final = skipping.wait_for(instance_id, timeout=10)
    finally:
        clock(skipping, "/autoskip?enabled=true", "POST")

    assert final["output"] == {"approved": {"ok": True}}
    assert not events(final, "TimerFired")


def test_advancing_the_clock_backwards_is_refused(skipping: HostProcess) -> None:
    reply = skipping.call("POST", "/admin/funcemu/clock/advance?seconds=-5")
    assert reply.status == 400 and "only moves forward" in reply.json()["Message"]


def test_without_the_flag_timers_wait_in_real_time() -> None:
    with HostProcess(DURABLE_APP, "--storage", "memory") as host:
        state = clock(host)
        refused = host.call("POST", "/admin/funcemu/clock/advance?seconds=60")
        began = time.perf_counter()
        final = host.wait_for(start(host, "short_timer", 0.3), timeout=10)
        wall = time.perf_counter() - began

    assert state["timeSkipping"] is False
    assert refused.status == 400 and "--time-skipping" in refused.json()["Message"]
    assert wall >= 0.3
    created, fired = events(final, "TimerCreated")[0], events(final, "TimerFired")[0]
    assert parse_time(fired["Timestamp"]) - parse_time(created["Timestamp"]) >= timedelta(seconds=0.29)
    assert abs(parse_time(state["now"]) - datetime.now(timezone.utc)) < timedelta(seconds=30)
