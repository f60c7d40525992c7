"""History replay: histories recorded from version 1 of an orchestrator on a live host replay cleanly
against a compatible version 2 and report divergence, in the engine's words, against an incompatible one;
both accepted formats; bad input says what is wrong and where."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest
from support import HostProcess, run_cli

from funcemu.cli import main
from funcemu.durable.recording import load_recording
from funcemu.durable.replayer import replay_recording
from funcemu.testing.replay import HistoryDiverged, HistoryFileError, ReplayError, replay_history

APPS = Path(__file__).parent / "apps"
V1, COMPATIBLE, INCOMPATIBLE = APPS / "replay_v1", APPS / "replay_v2_compatible", APPS / "replay_v2_incompatible"
WEBHOOK = "/runtime/webhooks/durabletask"
ORDER = {"item": "lamp", "holdHours": 72, "lines": [{"quantity": 1, "unitPrice": 10.0},
                                                    {"quantity": 2, "unitPrice": 2.5},
                                                    {"quantity": 3, "unitPrice": 1.0}]}
DIVERGENCE = ("Non-Deterministic workflow detected: order_flow at sequence id 1: history has TaskScheduled 'price' "
              "but the code now scheduled CallActivity 'check_fraud'.")
CASES = ["approved", "expired", "waiting"]
FORMATS = ["export", "api"]


@dataclass
class Recorded:
    files: dict[tuple[str, str], Path]  # (case, format) -> file
    documents: dict[str, dict[str, Any]]  # case -> management API JSON


def start_and_wait_for_timer(host: HostProcess, instance_id: str, timeout: float = 10) -> None:
    assert host.call("POST", f"{WEBHOOK}/orchestrators/order_flow/{instance_id}", ORDER).status == 202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = host.call("GET", f"{WEBHOOK}/instances/{instance_id}?showHistory=true").json()
        if any(event["EventType"] == "TimerCreated" for event in status.get("historyEvents", [])):
            return
        time.sleep(0.01)
    raise AssertionError(f"{instance_id} created no timer in {timeout}s")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Version 1 on a live host: approved by an event, expired by its timer, and one still waiting."""
    folder = tmp_path_factory.mktemp("histories")
    with HostProcess(V1, "--storage", "memory", "--time-skipping") as host:
        assert host.call("POST", "/admin/funcemu/clock/autoskip?enabled=false").status == 200
        for case in CASES[:2]:
            start_and_wait_for_timer(host, case)
        assert host.call("POST", f"{WEBHOOK}/instances/approved/raiseEvent/Approve", {"by": "grace"}).status == 202
        host.wait_for("approved")
        assert host.call("POST", "/admin/funcemu/clock/advance?seconds=260000").status == 200
        host.wait_for("expired")
        start_and_wait_for_timer(host, "waiting")
        files, documents = {}, {}
        for case in CASES:
            reply = host.call("GET", f"{WEBHOOK}/instances/{case}?showHistory=true&showHistoryOutput=true"
                                     "&showInput=true")
            documents[case] = reply.json()
            files[(case, "api")] = folder / f"{case}.api.json"
            files[(case, "api")].write_text(reply.text)
            files[(case, "export")] = folder / f"{case}.export.json"
            with contextlib.redirect_stdout(io.StringIO()):
                written = main(["durable", "get-history", case, "--output", str(files[(case, "export")]),
                                "--base-url", host.url])
            assert written == 0
    assert documents["waiting"]["runtimeStatus"] == "Running"
    return Recorded(files, documents)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_a_history_replays_cleanly_against_the_code_that_recorded_it(recorded: Recorded, case: str,
                                                                      fmt: str) -> None:
    report = replay_history(V1, recorded.files[(case, fmt)])

    assert report.ok and report.notes == [], str(report)
    assert report.exact is (fmt == "export")
    assert report.orchestrator == "order_flow" and report.instance_id == case


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_a_compatible_change_replays_cleanly(recorded: Recorded, case: str, fmt: str) -> None:
    report = replay_history(COMPATIBLE, recorded.files[(case, fmt)])

    assert report.ok, str(report)
    if case != "waiting":  # the new version adds "version": 2 to its output; that is not a divergence
        [note] = report.notes
        assert note.startswith("the output differs: history has {") and '"version": 2}' in note


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_an_incompatible_change_reports_the_divergence(recorded: Recorded, case: str, fmt: str) -> None:
    with pytest.raises(HistoryDiverged) as raised:
        replay_history(INCOMPATIBLE, recorded.files[(case, fmt)])

    assert raised.value.report.divergence is not None
    assert raised.value.report.divergence.startswith(DIVERGENCE)
    assert "DIVERGED" in str(raised.value) and DIVERGENCE in str(raised.value)


def test_the_replay_command_reports_in_the_same_words(recorded: Recorded, capsys: pytest.CaptureFixture[str]) -> None:
    history = str(recorded.files[("approved", "api")])
    clean = main(["replay", history, "--app", str(COMPATIBLE)])
    clean_out = capsys.readouterr().out
    diverged = main(["replay", history, "--app", str(INCOMPATIBLE)])
    diverged_out = capsys.readouterr().out

    assert clean == 0 and clean_out.startswith(f"Replayed {history}: orchestrator 'order_flow', instance 'approved'")
    assert "no divergence." in clean_out
    assert diverged == 1 and DIVERGENCE in diverged_out


def test_the_replay_command_runs_in_the_app_folder_by_default(recorded: Recorded) -> None:
    done = run_cli("replay", str(recorded.files[("expired", "export")]), cwd=V1)

    assert done.returncode == 0 and "exact sequence ids): no divergence." in done.stdout, done.stdout + done.stderr


def test_new_work_after_the_end_of_a_running_history_is_not_a_divergence(recorded: Recorded) -> None:
    document = copy.deepcopy(recorded.documents["approved"])
    document["runtimeStatus"] = "Running"
    document["historyEvents"] = [e for e in document["historyEvents"]
                                 if e["EventType"] != "ExecutionCompleted" and e.get("FunctionName") != "charge"]

    report = replay_history(V1, document)

    assert report.ok, str(report)
    assert report.notes == ["after the recorded history ends, the code now schedules CallActivity 'charge' at "
                            "sequence id 5 (new work, not a divergence: the history is still running)"]


def test_a_completed_history_the_code_would_not_complete_diverges(recorded: Recorded) -> None:
    document = copy.deepcopy(recorded.documents["approved"])
    document["historyEvents"] = [e for e in document["historyEvents"] if e["EventType"] != "EventRaised"]

    report = replay_history(V1, document, raise_on_divergence=False)

    assert not report.ok
    assert report.divergence is not None and report.divergence.startswith(
        "Non-Deterministic workflow detected: order_flow at sequence id 5: history has TaskScheduled 'charge' "
        "but the code now scheduled nothing with that id (yet).")


def test_a_history_in_the_real_hosts_shape_is_rebuilt_with_fan_out_results_in_place() -> None:
    """As Azure returns it: 7-digit times, extra fields, fan-out results completing out of order."""
    inner = json.dumps({**ORDER, "holdHours": 1})
    rows = [
        {"EventType": "ExecutionStarted", "OrchestrationInstance": None, "Input": json.dumps(inner),
         "Correlation": None, "ScheduledStartTime": None, "Generation": 0, "Tags": None,
         "Timestamp": "2024-05-01T10:00:00.1000001Z", "FunctionName": "order_flow"},
        completed("reserve", '"lamp"', "reservation-lamp", "10:00:00.2000001", "10:00:00.3000001"),
        completed("price", line(3, 1.0), 3.0, "10:00:00.4000001", "10:00:00.5000001"),
        completed("price", line(1, 10.0), 10.0, "10:00:00.4000001", "10:00:00.6000001"),
        completed("price", line(2, 2.5), 5.0, "10:00:00.4000001", "10:00:00.7000001"),
        {"EventType": "TimerCreated", "FireAt": "2024-05-01T11:00:00.8000001Z",
         "Timestamp": "2024-05-01T10:00:00.8000001Z"},
        {"EventType": "TimerFired", "FireAt": "2024-05-01T11:00:00.8000001Z",
         "Timestamp": "2024-05-01T11:00:00.9000001Z"},
        {"EventType": "ExecutionCompleted", "OrchestrationStatus": "Completed", "FailureDetails": None,
         "Result": {"reservation": "reservation-lamp", "total": 18.0, "receipt": None},
         "Timestamp": "2024-05-01T11:00:01.0000001Z"},
    ]
    document = {"name": "order_flow", "instanceId": "azure-1", "runtimeStatus": "Completed", "input": inner,
                "customStatus": None, "output": rows[-1]["Result"], "createdTime": "2024-05-01T10:00:00Z",
                "lastUpdatedTime": "2024-05-01T11:00:01Z", "historyEvents": rows}

    report = replay_history(V1, document)

    assert report.ok and report.notes == [], str(report)
    assert report.episodes == 6  # the start, then one per incoming event


prices_app = df.DFApp()


@prices_app.orchestration_trigger(context_name="context")
def line_prices(context: df.DurableOrchestrationContext):
    return (yield context.task_all([context.call_activity("price", line) for line in context.get_input()]))


def test_fan_out_results_reach_the_task_that_asked_for_them() -> None:
    """Same-instant decisions are matched to the code by input, so out-of-order results land in place."""
    lines = [{"quantity": q, "unitPrice": p} for q, p in ((1, 10.0), (2, 2.5), (3, 1.0))]
    rows = [{"EventType": "ExecutionStarted", "FunctionName": "line_prices", "Input": json.dumps(json.dumps(lines)),
             "Timestamp": "2024-05-01T10:00:00Z"},
            completed("price", line(3, 1.0), 3.0, "10:00:01", "10:00:02"),
            completed("price", line(1, 10.0), 10.0, "10:00:01", "10:00:03"),
            completed("price", line(2, 2.5), 5.0, "10:00:01", "10:00:04"),
            {"EventType": "ExecutionCompleted", "OrchestrationStatus": "Completed", "Result": [10.0, 5.0, 3.0],
             "Timestamp": "2024-05-01T10:00:05Z"}]
    [handler] = [f.get_user_function() for f in prices_app.get_functions()]

    report = replay_recording(load_recording({"historyEvents": rows}), handler)

    assert report.ok and report.notes == [], str(report)


def completed(name: str, input: str, result: Any, scheduled: str, done: str) -> dict[str, Any]:
    return {"EventType": "TaskCompleted", "Result": result, "ScheduledTime": f"2024-05-01T{scheduled}Z",
            "FunctionName": name, "Input": json.dumps([input]), "Timestamp": f"2024-05-01T{done}Z"}


def line(quantity: int, unit_price: float) -> str:
    return json.dumps({"quantity": quantity, "unitPrice": unit_price})


# -- bad input ----------------------------------------------------------------------------------------------


STARTED = {"EventType": "ExecutionStarted", "FunctionName": "order_flow", "Input": None,
           "Timestamp": "2024-05-01T10:00:00Z"}
BAD_INPUT = [
    ("not json at all", "is not JSON"),
    ("[]", "the top level is a list, not an object"),
    ('{"name": "order_flow", "runtimeStatus": "Completed"}', 'has no "historyEvents": this is not a history'),
    (json.dumps({"historyEvents": []}), "historyEvents is empty"),
    (json.dumps({"historyEvents": [STARTED, {"EventType": "Bogus", "Timestamp": "2024-05-01T10:00:01Z"}]}),
     'historyEvents[1].EventType "Bogus" is not a history event type'),
    (json.dumps({"historyEvents": [{**STARTED, "Timestamp": "yesterday"}]}),
     'historyEvents[0].Timestamp "yesterday" is not an ISO 8601 time'),
    (json.dumps({"historyEvents": [{**STARTED, "EventType": "TaskCompleted"}]}),
     'historyEvents[0].EventType is "TaskCompleted"; a history starts with ExecutionStarted'),
    (json.dumps({"historyEvents": [STARTED, {"EventType": "TaskCompleted", "FunctionName": "reserve",
                                             "ScheduledTime": "2024-05-01T10:00:00Z",
                                             "Timestamp": "2024-05-01T10:00:01Z"}]}),
     "historyEvents[1].Result is missing: record the history with showHistoryOutput=true"),
    (json.dumps({"historyEvents": [STARTED, {"EventType": "TimerFired", "FireAt": "2024-05-01T11:00:00Z",
                                             "Timestamp": "2024-05-01T11:00:00Z"}]}),
     "historyEvents[1] is a TimerFired for 2024-05-01T11:00:00Z without a TimerCreated"),
    (json.dumps({"format": "funcemu-history", "version": 1, "history": [{"EventType": 12, "EventId": "x"}]}),
     'history[0].EventId "x" is not an integer'),
]


@pytest.mark.parametrize(("content", "problem"), BAD_INPUT)
def test_a_file_that_is_not_a_history_says_so_with_the_first_bad_field(tmp_path: Path, content: str,
                                                                       problem: str) -> None:
    history = tmp_path / "history.json"
    history.write_text(content)

    with pytest.raises(HistoryFileError) as raised:
        replay_history(V1, history)

    assert str(raised.value).startswith(f"{history}: ") and problem in str(raised.value)


def test_the_replay_command_reports_bad_input_with_status_2(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "status.json"
    history.write_text('{"name": "order_flow", "runtimeStatus": "Completed"}')

    status = main(["replay", str(history), "--app", str(V1)])

    assert status == 2
    assert capsys.readouterr().err.startswith(f"funcemu replay: {history}: has no \"historyEvents\"")


def test_a_history_of_another_orchestrator_says_so(recorded: Recorded) -> None:
    history = recorded.files[("approved", "export")]

    with pytest.raises(ReplayError, match="was recorded from orchestrator 'order_flow', not 'chain'"):
        replay_history(V1, history, orchestrator="chain")
    with pytest.raises(ReplayError) as raised:
        replay_history(APPS / "durable_app", history)
    assert ("was recorded from orchestrator 'order_flow', but the app in" in str(raised.value)
            and "has no orchestrator of that name (its orchestrators: " in str(raised.value)
            and "'chain'" in str(raised.value))


@pytest.fixture(autouse=True)
def no_leftover_app_paths() -> Iterator[None]:
    """Loading an app for a replay must not leave its folder on sys.path."""
    import sys

    before = list(sys.path)
    yield
    assert sys.path == before
