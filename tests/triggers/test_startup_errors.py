"""Bad trigger configuration stops `funcemu start` with exit 1 and one message naming function and setting.

Storage that does not answer is not configuration: the host keeps running (test_listener_retry.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from trigger_support import AppHost

QUEUE_APP = """
import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="%QUEUE%", connection="{connection}")
def consume(msg: func.QueueMessage) -> None:
    pass
"""


def fails(start_app: Callable[..., AppHost], code: str, **options: object) -> str:
    host = start_app(code, wait=False, **options)
    assert host.wait_exit(timeout=30) == 1, host.log()
    assert "Listening on" not in host.log()
    return host.log()


def test_an_invalid_schedule(start_app: Callable[..., AppHost]) -> None:
    code = """
import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="every day at noon", arg_name="timer")
def report(timer: func.TimerRequest) -> None:
    pass
"""
    log = fails(start_app, code)
    assert ("Function 'report': The schedule expression 'every day at noon' was not recognized as a valid cron "
            "expression or timespan string.") in log


def test_a_schedule_setting_that_does_not_exist(start_app: Callable[..., AppHost]) -> None:
    code = """
import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="%REPORT_SCHEDULE%", arg_name="timer")
def report(timer: func.TimerRequest) -> None:
    pass
"""
    log = fails(start_app, code)
    assert "Function 'report' (binding 'timer'): schedule '%REPORT_SCHEDULE%' refers to the app setting " \
           "'REPORT_SCHEDULE', which does not exist." in log


def test_a_missing_connection_setting(start_app: Callable[..., AppHost]) -> None:
    log = fails(start_app, QUEUE_APP.replace("{connection}", "OrdersStorage"), settings={"QUEUE": "orders"})
    assert ("Function 'consume' (binding 'msg'): Storage account connection string 'AzureWebJobsOrdersStorage' "
            "does not exist.") in log


@pytest.mark.azurite
def test_an_invalid_queue_name(start_app: Callable[..., AppHost], storage: str) -> None:
    log = fails(start_app, QUEUE_APP.replace("{connection}", ""),
                settings={"QUEUE": "Bad_Name", "AzureWebJobsStorage": storage})
    assert "Function 'consume' (binding 'msg'): queue name 'bad_name' is invalid" in log


@pytest.mark.azurite
def test_bad_queue_options_in_host_json(start_app: Callable[..., AppHost], storage: str) -> None:
    log = fails(start_app, QUEUE_APP.replace("{connection}", ""),
                settings={"QUEUE": "orders", "AzureWebJobsStorage": storage},
                host_json={"extensions": {"queues": {"batchSize": 100}}})
    assert "host.json: extensions.queues.batchSize 100 must be an integer from 1 to 32" in log
