"""Storage that does not answer at startup: the host keeps serving, logs which listener cannot start and
why (function, binding, connection setting, endpoint), and starts it once the storage answers."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from trigger_support import (
    AppHost,
    LatePort,
    closed_port_connection,
    endpoint_address,
    ensure_queue,
    queue_client,
    with_endpoint_port,
)

from funcemu.testing.httpclient import HttpClient

APP = """
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.queue_trigger(arg_name="msg", queue_name="%QUEUE%", connection="Orders")
def consume(msg: func.QueueMessage) -> None:
    logging.info("consumed %s", msg.get_body().decode())


@app.route(route="ping", methods=["GET"])
@app.queue_output(arg_name="out", queue_name="outbox", connection="Orders")
def ping(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    return func.HttpResponse("pong")
"""

TIMER_APP = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.timer_trigger(schedule="0 0 * * * *", arg_name="timer")
def hourly(timer: func.TimerRequest) -> None:
    pass


@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
"""


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound by this test and not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def serves(host: AppHost) -> None:
    response = HttpClient(host.url).get("/api/ping")
    assert (response.status, response.text) == (200, "pong"), response
    assert host.process.is_running()


def test_an_unreachable_queue_endpoint_leaves_the_host_serving(
        start_app: Callable[..., AppHost], closed_port: int) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}/devstoreaccount1"
    host = start_app(APP, settings={"QUEUE": "orders", "Orders": closed_port_connection(closed_port)})

    serves(host)
    log = host.log()
    assert "The listener for function 'Functions.consume' was unable to start.\n" in log
    assert (f"Function 'consume' (binding 'msg'): the queue endpoint {endpoint} of connection setting "
            "'Orders' cannot be used:") in log
    assert "Is Azurite (or the storage account) running and reachable? funcemu keeps serving the other " \
           "functions and retries this listener in the background (at most every 30 s)." in log
    assert (f"Function 'ping' (binding 'out'): the queue endpoint {endpoint} of connection setting 'Orders' "
            "cannot be used:") in log
    assert "Invocations that use this binding fail until it answers." in log
    assert log.count("was unable to start") == 1


def test_a_timer_monitor_without_reachable_storage_leaves_the_host_serving(
        start_app: Callable[..., AppHost], closed_port: int) -> None:
    dead = closed_port_connection(closed_port, service="Blob")
    host = start_app(TIMER_APP, settings={"AzureWebJobsStorage": dead})

    serves(host)
    log = host.log()
    assert "The listener for function 'Functions.hourly' was unable to start." in log
    assert ("Function 'hourly' (binding 'timer (useMonitor; use_monitor=False turns it off)'): the blob endpoint "
            f"http://127.0.0.1:{closed_port}/devstoreaccount1 of connection setting 'AzureWebJobsStorage'") in log


@pytest.mark.azurite
def test_the_listener_starts_once_the_storage_answers(
        start_app: Callable[..., AppHost], storage: str, unique: Callable[[str], str]) -> None:
    queue = unique("late")
    ensure_queue(queue_client(storage, queue)).send_message("hello")
    with LatePort() as late:
        host = start_app(APP, settings={"QUEUE": queue, "Orders": with_endpoint_port(storage, "Queue", late.port)})
        host.wait_log(r"The listener for function 'Functions\.consume' was unable to start\.")
        serves(host)

        late.forward_to(endpoint_address(storage, "Queue"))

        host.wait_log(r"The listener for function 'Functions\.consume' has started \(attempt \d+\): its storage "
                      r"answers now\.", timeout=40)
        host.wait_log(r"consumed hello", timeout=20)
        assert host.log().count("was unable to start") == 1
