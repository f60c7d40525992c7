"""Timer trigger end to end: schedules firing, runOnStartup, the admin API, and useMonitor's past-due run."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from azure.storage.blob import BlobServiceClient
from trigger_support import AppHost, wait_until

TICKS = """
import logging

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="*/1 * * * * *", arg_name="timer")
def every_second(timer: func.TimerRequest) -> None:
    logging.info("second past_due=%s status=%s", timer.past_due, timer.schedule_status)


@app.timer_trigger(schedule="00:00:01", arg_name="timer", use_monitor=False)
def interval(timer: func.TimerRequest) -> None:
    logging.info("interval tick")


@app.timer_trigger(schedule="%HOURLY%", arg_name="timer", run_on_startup=True, use_monitor=False)
def hourly(timer: func.TimerRequest) -> None:
    logging.info("hourly past_due=%s type=%s", timer.past_due, type(timer).__name__)
"""


def test_schedules_fire_and_run_on_startup_fires_at_once(start_app: Callable[..., AppHost]) -> None:
    host = start_app(TICKS, settings={"HOURLY": "0 0 * * * *"})
    host.wait_log(r"hourly past_due=False type=TimerRequest", timeout=5)
    host.wait_log(r"second past_due=False status=\{\}", count=3, timeout=10)   # no monitor: more than once a minute
    host.wait_log(r"interval tick", count=3, timeout=10)
    assert "Reason='Timer fired at " in host.log()


def test_admin_api_runs_a_timer_function(start_app: Callable[..., AppHost]) -> None:
    host = start_app(TICKS, settings={"HOURLY": "0 0 * * * *"})
    host.wait_log(r"hourly past_due=False", timeout=5)
    assert host.post("/admin/functions/hourly", {"input": ""}).status == 202
    host.wait_log(r"hourly past_due=False", count=2, timeout=5)
    assert "Reason='This function was programmatically called via the host APIs.'" in host.log()


DAILY = """
import json
import logging

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="0 0 0 * * *", arg_name="timer")
def daily(timer: func.TimerRequest) -> None:
    logging.info("daily past_due=%s status=%s", timer.past_due, json.dumps(timer.schedule_status))
"""
BERLIN = ZoneInfo("Europe/Berlin")


def status_blob(storage: str, function: str = "daily") -> tuple[object, dict[str, str]]:
    hosts = BlobServiceClient.from_connection_string(storage).get_container_client("azure-webjobs-hosts")
    [name] = [b.name for b in hosts.list_blobs(name_starts_with="timers/")
              if b.name.endswith(f"/Host.Functions.{function}/status")]
    blob = hosts.get_blob_client(name)
    return blob, json.loads(blob.download_blob().readall())


@pytest.mark.azurite
def test_use_monitor_keeps_status_and_runs_a_missed_occurrence(start_app: Callable[..., AppHost],
                                                               storage: str) -> None:
    settings = {"AzureWebJobsStorage": storage, "WEBSITE_TIME_ZONE": "Europe/Berlin"}
    host = start_app(DAILY, settings=settings)
    host.stop()
    blob, status = status_blob(storage)
    next_run = datetime.fromisoformat(status["Next"])
    assert next_run.astimezone(BERLIN).time().isoformat() == "00:00:00"       # local midnight, with offset
    assert next_run.utcoffset() == next_run.astimezone(BERLIN).utcoffset()

    today = datetime.now(BERLIN).replace(hour=0, minute=0, second=0, microsecond=0)
    missed = {"Last": (today - timedelta(days=1)).isoformat(), "Next": today.isoformat(),
              "LastUpdated": (today - timedelta(hours=1)).isoformat()}
    blob.upload_blob(json.dumps(missed), overwrite=True)                       # type: ignore[attr-defined]
    host = start_app(DAILY, settings=settings)
    found = host.wait_log(r"daily past_due=True status=(.*)", timeout=10)
    assert json.loads(found[0].group(1)) == missed
    def updated() -> dict[str, str]:
        status = status_blob(storage)[1]
        return status if status["Next"] != missed["Next"] else {}
    after = wait_until(updated, 10, "the status to be updated after the run")
    assert datetime.fromisoformat(after["Next"]) == today + timedelta(days=1)
    assert datetime.fromisoformat(after["Last"]) <= datetime.now(BERLIN)


@pytest.mark.azurite
def test_a_changed_schedule_is_not_past_due(start_app: Callable[..., AppHost], storage: str) -> None:
    settings = {"AzureWebJobsStorage": storage}
    code = DAILY.replace("def daily(", "def nightly(")
    start_app(code, settings=settings).stop()
    blob, _ = status_blob(storage, "nightly")
    earlier = datetime.now(ZoneInfo("UTC")) - timedelta(days=2)
    changed = {"Last": earlier.isoformat(), "Next": (earlier + timedelta(minutes=7)).isoformat(),
               "LastUpdated": earlier.isoformat()}                              # not what 0 0 0 * * * would give
    blob.upload_blob(json.dumps(changed), overwrite=True)                      # type: ignore[attr-defined]
    host = start_app(code, settings=settings)
    _, after = status_blob(storage, "nightly")
    assert after["Next"] != changed["Next"]
    assert "daily past_due" not in host.log()
