"""Failed invocations in a funcemu process (docs §3.8, §8.7, §2.4, §3.3): an input binding that fails gives the
function-failure path (HTTP 500 with an empty body; Executing/Executed (Failed ...) with the exception
lines; a queue message retried, then poisoned); `@app.retry` retries a failing timer function."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable

import pytest
from trigger_support import AppHost, closed_port_connection, ensure_queue, peek_all, queue_client, wait_until

from funcemu.testing.httpclient import HttpClient

INPUTS = """
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="rows")
@app.table_input(arg_name="rows", connection="Tables", table_name="%TABLE%")
def rows(req: func.HttpRequest, rows: str) -> str:
    logging.info("rows ran")
    return rows
"""

FAILED = r"Executed 'Functions\.rows' \(Failed, Id={id}, Duration=\d+ms\)"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_failed_rows_call(host: AppHost, error: str) -> None:
    reply = HttpClient(host.url).get("/api/rows")
    assert (reply.status, reply.body) == (500, b"")
    [executing] = host.wait_log(r"Executing 'Functions\.rows' \(Reason='[^']*', Id=([0-9a-f-]{36})\)")
    host.wait_log(FAILED.format(id=executing.group(1)))
    log = host.log()
    assert "Exception while executing function: Functions.rows. System.Private.CoreLib: Result: Failure" in log
    assert f"Exception: {error}" in log
    assert "rows ran" not in log and "Server got itself in trouble" not in log


def test_an_unreachable_table_input_gives_an_empty_500(start_app: Callable[..., AppHost]) -> None:
    host = start_app(INPUTS, settings={"Tables": closed_port_connection(closed_port(), "Table"),
                                       "TABLE": "people"})
    assert_failed_rows_call(host, "ServiceRequestError: ")


@pytest.mark.azurite
def test_an_invalid_table_name_gives_an_empty_500(start_app: Callable[..., AppHost], storage: str) -> None:
    host = start_app(INPUTS, settings={"Tables": storage, "TABLE": "tt"})   # storage rejects the name
    assert_failed_rows_call(host, "HttpResponseError: The specified resource name length is not within the "
                                  "permissible limits.")


QUEUE = """
import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="%IN_QUEUE%", connection="AzureWebJobsStorage")
@app.table_input(arg_name="rows", connection="AzureWebJobsStorage", table_name="tt")
def consume(msg: func.QueueMessage, rows: str) -> None:
    pass
"""


@pytest.mark.azurite
def test_a_queue_message_whose_input_binding_fails_is_retried_then_poisoned(
        start_app: Callable[..., AppHost], storage: str) -> None:
    name = f"inputs{str(int(time.time() * 1000))[-9:]}"
    ensure_queue(queue_client(storage, name))
    host = start_app(QUEUE, settings={"AzureWebJobsStorage": storage, "IN_QUEUE": name}, host_json={
        "extensions": {"queues": {"maxDequeueCount": 2, "maxPollingInterval": "00:00:00.500"}}})
    queue_client(storage, name).send_message("hello")
    poison = queue_client(storage, name + "-poison", encoding="none")
    assert wait_until(lambda: peek_all(poison), 30, "the poison message") == [base64.b64encode(b"hello").decode()]
    host.wait_log(r"Executed 'Functions\.consume' \(Failed, ", count=2)
    assert "Message has reached MaxDequeueCount of 2." in host.log()


RETRIES = """
import logging

import azure.functions as func

app = func.FunctionApp()
ATTEMPTS = []


@app.retry(strategy="fixed_delay", max_retry_count="2", delay_interval="00:00:00")
@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True, use_monitor=False)
def flaky(timer: func.TimerRequest, context: func.Context) -> None:
    retry = context.retry_context
    ATTEMPTS.append(retry.retry_count)
    logging.info("attempt retry_count=%s max=%s", retry.retry_count, retry.max_retry_count)
    if len(ATTEMPTS) < 3:
        raise ValueError("not yet")


@app.retry(strategy="exponential_backoff", max_retry_count="1", minimum_interval="00:00:00",
           maximum_interval="00:00:01")
@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True, use_monitor=False)
def hopeless(timer: func.TimerRequest) -> None:
    raise ValueError("never")
"""


def test_a_failing_timer_is_retried_by_its_retry_policy(start_app: Callable[..., AppHost]) -> None:
    host = start_app(RETRIES)
    host.wait_log(r"Executed 'Functions\.flaky' \(Succeeded, ")
    log = host.log()
    assert [f"attempt retry_count={n} max=2" in log for n in range(4)] == [True, True, True, False]
    assert log.count("Executed 'Functions.flaky' (Failed, ") == 2
    host.wait_log(r"Function execution failed after '1' retries\.")
    assert host.log().count("Executed 'Functions.hopeless' (Failed, ") == 2
