"""Determinism checks: a replay that schedules other work than its history fails the instance with a
message naming the orchestrator, the sequence id and both calls; non-deterministic API calls during
replay are logged once per orchestrator and behave as always."""

from __future__ import annotations

import logging
import random
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4 as new_id

import azure.durable_functions as df
import pytest
from support import HostProcess

from funcemu.durable import determinism
from funcemu.durable.history import (
    execution_started,
    orchestrator_completed,
    orchestrator_started,
    task_completed,
    task_scheduled,
)
from funcemu.durable.orchestrator import Episode, run_episode

APP = Path(__file__).parent / "apps" / "determinism_app"
WEBHOOK = "/runtime/webhooks/durabletask"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
WARNING = "while replaying"

app = df.DFApp()
SEEN: list[tuple[datetime, uuid.UUID, float]] = []


@app.orchestration_trigger(context_name="context")
def renamed_step(context: df.DurableOrchestrationContext):
    yield context.call_activity("charge_card", 1)
    yield context.call_activity("ship", 2)


@app.orchestration_trigger(context_name="context")
def clock_reader(context: df.DurableOrchestrationContext):
    SEEN.append((datetime.now(), new_id(), random.random()))
    yield context.call_activity("ship", 1)
    return "done"


@app.orchestration_trigger(context_name="context")
def first_run_only(context: df.DurableOrchestrationContext):
    if not context.is_replaying:
        uuid.uuid4()
    yield context.call_activity("ship", 1)
    return "done"


def helper_that_reads_the_clock() -> str:
    return datetime.utcnow().isoformat()


@app.orchestration_trigger(context_name="context")
def via_helper(context: df.DurableOrchestrationContext):
    yield context.call_activity("ship", helper_that_reads_the_clock())


@app.orchestration_trigger(context_name="context")
def plain(context: df.DurableOrchestrationContext):
    yield context.call_activity("ship", context.current_utc_datetime.isoformat())


HANDLERS = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


def replay_second_episode(name: str, scheduled: str = "ship") -> Episode:
    """Episode 2 of `name`: its first activity (`scheduled`, id 0) completed."""
    past = [orchestrator_started(T0), execution_started(T0, name, "i-1", "e-1", None),
            task_scheduled(T0, 0, scheduled, "1"), orchestrator_completed(T0)]
    later = T0 + timedelta(seconds=1)
    return run_episode(HANDLERS[name], name=name, instance_id="i-1", past=past,
                       new=[orchestrator_started(later), task_completed(later, 0, '"ok"')], now=later)


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    determinism.forget_warnings()
    yield
    determinism.forget_warnings()


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "funcemu.durable" and WARNING in r.getMessage()]


# -- the failure ------------------------------------------------------------------------------------------


def test_a_changed_activity_name_fails_the_replay_naming_position_and_both_calls() -> None:
    episode = replay_second_episode("renamed_step", scheduled="charge")

    assert episode.done and episode.failure is not None
    assert episode.failure.reason.startswith(
        "Non-Deterministic workflow detected: renamed_step at sequence id 0: history has TaskScheduled "
        "'charge' but the code now scheduled CallActivity 'charge_card'.")


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    with HostProcess(APP, "--storage", "memory") as running:
        yield running


def start(host: HostProcess, name: str) -> str:
    reply = host.call("POST", f"{WEBHOOK}/orchestrators/{name}")
    assert reply.status == 202, reply.text
    return str(reply.json()["id"])


def test_a_non_deterministic_orchestrator_fails_on_a_live_host(host: HostProcess) -> None:
    final = host.wait_for(start(host, "drifting"))

    assert final["runtimeStatus"] == "Failed"
    assert final["output"].startswith(
        "Non-Deterministic workflow detected: drifting at sequence id 0: history has TaskScheduled 'step_a' "
        "but the code now scheduled CallActivity 'step_b'.")
    assert "context.current_utc_datetime" in final["output"]


# -- the warning ------------------------------------------------------------------------------------------


def test_non_deterministic_calls_while_replaying_are_logged_once_per_orchestrator(host: HostProcess) -> None:
    outputs = [host.wait_for(start(host, "sloppy"))["output"] for _ in range(3)]
    careful = host.wait_for(start(host, "careful"))

    assert [output["value"] for output in outputs] == [4, 4, 4]
    assert len({output["seen"][1] for output in outputs}) == 3  # uuid4() still returns new ids
    assert careful["runtimeStatus"] == "Completed"
    lines = [line for line in host.lines if WARNING in line]
    assert len(lines) == 1, lines
    assert ("Orchestrator 'sloppy' called datetime.now() while replaying (function_app.py:38)" in lines[0]
            and "use context.current_utc_datetime instead" in lines[0])


def test_the_calls_behave_as_without_the_check(caplog: pytest.LogCaptureFixture) -> None:
    SEEN.clear()
    with caplog.at_level(logging.WARNING, "funcemu.durable"):
        first, second = replay_second_episode("clock_reader"), replay_second_episode("clock_reader")

    assert first.output == second.output == '"done"'
    (now_1, id_1, random_1), (now_2, id_2, random_2) = SEEN
    assert abs(now_1 - datetime.now()) < timedelta(seconds=30) and now_2 >= now_1
    assert id_1 != id_2 and random_1 != random_2
    [warning] = warnings_in(caplog)
    assert "Orchestrator 'clock_reader' called datetime.now() while replaying (test_determinism.py:" in warning


def test_calls_outside_replay_and_in_clean_orchestrators_are_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "funcemu.durable"):
        replay_second_episode("first_run_only")
        replay_second_episode("plain")

    assert warnings_in(caplog) == []


def test_a_call_in_a_helper_of_the_app_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "funcemu.durable"):
        replay_second_episode("via_helper")

    [warning] = warnings_in(caplog)
    assert "called datetime.utcnow() while replaying" in warning


def test_only_orchestrators_that_name_such_an_api_are_watched() -> None:
    assert determinism.suspect(HANDLERS["clock_reader"])  # also through the alias new_id = uuid4
    assert determinism.suspect(HANDLERS["via_helper"])
    assert not determinism.suspect(HANDLERS["plain"])
    assert not determinism.suspect(HANDLERS["renamed_step"])


def test_an_installed_profiler_keeps_running_and_is_restored() -> None:
    calls: list[str] = []

    def profiler(frame: Any, event: str, arg: Any) -> None:
        calls.append(event)

    sys.setprofile(profiler)
    try:
        replay_second_episode("clock_reader")
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)
    assert "call" in calls
