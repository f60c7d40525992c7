"""A timer whose schedule monitor is on needs AzureWebJobsStorage (§5.1: the host's listener fails to start,
`Could not create BlobContainerClient for ScheduleMonitor`). As for other storage triggers with a missing
connection setting (README, deliberate deviations), funcemu stops with exit 1 and one message naming the
function and the setting; timers without a monitor run without storage."""

from __future__ import annotations

from collections.abc import Callable

from trigger_support import AppHost

MONITORED = """
import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="0 0 * * * *", arg_name="timer")
def hourly(timer: func.TimerRequest) -> None:
    pass
"""

UNMONITORED = """
import logging

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="0 0 * * * *", arg_name="timer", use_monitor=False, run_on_startup=True)
def hourly(timer: func.TimerRequest) -> None:
    logging.info("hourly ran %s", timer.schedule_status)


@app.timer_trigger(schedule="*/2 * * * * *", arg_name="timer")
def often(timer: func.TimerRequest) -> None:
    logging.info("often ran")
"""


def test_a_monitored_timer_without_storage_stops_the_host(start_app: Callable[..., AppHost]) -> None:
    host = start_app(MONITORED, wait=False)
    assert host.wait_exit(timeout=30) == 1, host.log()
    log = host.log()
    assert "Listening on" not in log
    assert ("Function 'hourly' (binding 'timer'): The timer's schedule monitor (useMonitor; use_monitor=False "
            "turns it off) needs the AzureWebJobsStorage setting") in log


def test_timers_without_a_monitor_run_without_storage(start_app: Callable[..., AppHost]) -> None:
    host = start_app(UNMONITORED, settings={"WEBSITE_TIME_ZONE": "UTC"})
    host.wait_log(r"hourly ran \{\}", timeout=10)
    host.wait_log(r"often ran", count=2, timeout=10)         # more than once a minute: the monitor is off
