"""Queue trigger and queue/blob outputs end to end: a funcemu process against Azurite."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from trigger_support import AppHost, ensure_queue, launch, peek_all, queue_client, wait_until

pytestmark = pytest.mark.azurite

APP = """
import json
import logging

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="%IN_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="echo", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
@app.blob_output(arg_name="copy", path="%CONTAINER%/{queueTrigger}.txt", connection="AzureWebJobsStorage")
def consume(msg: func.QueueMessage, echo: func.Out[str], copy: func.Out[str]) -> None:
    body = msg.get_body().decode()
    logging.info("consumed %s dequeue=%s", body, msg.dequeue_count)
    if body.startswith("fail"):
        raise ValueError("boom " + body)
    echo.set(json.dumps({"body": body, "id": msg.id, "dequeue_count": msg.dequeue_count,
                         "type": type(msg).__name__, "aware": msg.insertion_time.tzinfo is not None}))
    copy.set(body.upper())


@app.queue_trigger(arg_name="text", queue_name="%RAW_QUEUE%", connection="Storage")
@app.queue_output(arg_name="$return", queue_name="%OUT_QUEUE%", connection="Storage")
def raw(text: str) -> str:
    return json.dumps({"raw": text, "type": type(text).__name__})
"""


class QueueApp:
    def __init__(self, host: AppHost, connection: str, names: dict[str, str]) -> None:
        self.host, self.connection, self.names = host, connection, names
        self.inbox = queue_client(connection, names["IN_QUEUE"])
        self.raw_inbox = queue_client(connection, names["RAW_QUEUE"])
        self.outbox = queue_client(connection, names["OUT_QUEUE"])
        self.poison = queue_client(connection, names["IN_QUEUE"] + "-poison")

    def take_output(self, timeout: float = 15.0) -> dict[str, Any]:
        """The next output message (decoded from base64 and JSON), removed from the queue."""
        def receive() -> Any:
            try:
                return next(iter(self.outbox.receive_messages(max_messages=1)), None)
            except Exception:  # the queue is created by the first output
                return None
        message = wait_until(receive, timeout, "an output message")
        self.outbox.delete_message(message)
        return dict(json.loads(message.content))


@pytest.fixture(scope="module")
def queue_app(storage: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueueApp]:
    suffix = str(int(time.time() * 1000))[-9:]
    names = {"IN_QUEUE": f"in{suffix}", "RAW_QUEUE": f"raw{suffix}", "OUT_QUEUE": f"out{suffix}",
             "CONTAINER": f"copies{suffix}"}
    settings = {"AzureWebJobsStorage": storage, **names}
    host_json = {"extensions": {"queues": {"maxPollingInterval": "00:00:00.500", "visibilityTimeout": "00:00:00"}}}
    for name in ("IN_QUEUE", "RAW_QUEUE"):   # the trigger polls existing queues; it does not create them
        ensure_queue(queue_client(storage, names[name]))
    app = QueueApp(launch(tmp_path_factory.mktemp("queue-app"), APP, settings=settings, host_json=host_json),
                   storage, names)
    try:
        yield app
    finally:
        app.host.stop()


def test_a_message_runs_the_function_and_its_outputs(queue_app: QueueApp, storage: str) -> None:
    queue_app.inbox.send_message("order-1")
    echoed = queue_app.take_output()
    assert echoed == {"body": "order-1", "id": echoed["id"], "dequeue_count": 1, "type": "QueueMessage",
                      "aware": True}
    assert echoed["id"]
    blob = BlobServiceClient.from_connection_string(storage).get_blob_client(
        queue_app.names["CONTAINER"], "order-1.txt")
    assert blob.download_blob().readall() == b"ORDER-1"
    wait_until(lambda: not peek_all(queue_app.inbox), 10, "the message to be deleted")
    assert "New queue message detected on '" + queue_app.names["IN_QUEUE"] + "'." in queue_app.host.log()


def test_output_messages_are_base64_like_the_hosts(queue_app: QueueApp) -> None:
    queue_app.inbox.send_message("order-2")
    plain = queue_client(queue_app.connection, queue_app.names["OUT_QUEUE"], encoding="none")
    content = wait_until(lambda: peek_all(plain), 15, "an output message")[0]
    assert json.loads(base64.b64decode(content))["body"] == "order-2"
    queue_app.take_output()


def test_a_str_parameter_receives_the_raw_text(queue_app: QueueApp) -> None:
    queue_app.raw_inbox.send_message("héllo wörld")
    assert queue_app.take_output() == {"raw": "héllo wörld", "type": "str"}


def test_a_failing_message_is_tried_five_times_then_poisoned_intact(queue_app: QueueApp) -> None:
    queue_app.inbox.send_message("fail-3")
    raw_poison = queue_client(queue_app.connection, queue_app.names["IN_QUEUE"] + "-poison", encoding="none")
    content = wait_until(lambda: peek_all(raw_poison), 30, "the poison message")
    assert content == [base64.b64encode(b"fail-3").decode()]          # byte for byte what was sent
    log = queue_app.host.log()
    assert [f"consumed fail-3 dequeue={n}" in log for n in range(1, 7)] == [True] * 5 + [False]
    assert "Message has reached MaxDequeueCount of 5. Moving message to queue '" \
        + queue_app.names["IN_QUEUE"] + "-poison'." in log
    assert "Exception: ValueError: boom fail-3" in log
    wait_until(lambda: not peek_all(queue_app.inbox), 10, "the original to be deleted")
    raw_poison.clear_messages()


def test_text_that_is_not_base64_goes_to_poison_without_running(queue_app: QueueApp) -> None:
    plain = queue_client(queue_app.connection, queue_app.names["IN_QUEUE"], encoding="none")
    plain.send_message("not base64!")
    raw_poison = queue_client(queue_app.connection, queue_app.names["IN_QUEUE"] + "-poison", encoding="none")
    assert wait_until(lambda: peek_all(raw_poison), 15, "the poison message") == ["not base64!"]
    assert "consumed not base64" not in queue_app.host.log()
    raw_poison.clear_messages()


def test_admin_api_runs_the_function_with_the_input(queue_app: QueueApp) -> None:
    response = queue_app.host.post("/admin/functions/consume", {"input": "by-admin"})
    assert response.status == 202
    assert queue_app.take_output() == {"body": "by-admin", "id": None, "dequeue_count": 0,
                                       "type": "QueueMessage", "aware": True}


def test_pickup_latency_after_idle(queue_app: QueueApp) -> None:
    """With maxPollingInterval 0.5 s an idle listener picks a message up within about that."""
    time.sleep(3)  # let the back-off reach its cap (that is what is being measured)
    started = time.monotonic()
    queue_app.raw_inbox.send_message("latency")
    queue_app.take_output()
    elapsed = time.monotonic() - started
    print(f"queue pickup latency after idle: {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0


PLAIN_APP = """
import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="%IN_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="$return", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def relay(msg: func.QueueMessage) -> str:
    return "relayed " + msg.get_body().decode()
"""


def test_message_encoding_none(storage: str, tmp_path: Path) -> None:
    names = {"IN_QUEUE": f"plainin{int(time.time() * 1000) % 10**8}", "OUT_QUEUE": f"plainout{int(time.time()) % 10**6}"}
    inbox = ensure_queue(queue_client(storage, names["IN_QUEUE"], encoding="none"))
    host = launch(tmp_path / "plain", PLAIN_APP, settings={"AzureWebJobsStorage": storage, **names},
                  host_json={"extensions": {"queues": {"messageEncoding": "none",
                                                       "maxPollingInterval": "00:00:00.500"}}})
    try:
        inbox.send_message("plain text")
        outbox = queue_client(storage, names["OUT_QUEUE"], encoding="none")
        assert wait_until(lambda: peek_all(outbox), 15, "the relayed message") == ["relayed plain text"]
    finally:
        host.stop()


WATCHER_APP = """
import logging

import azure.functions as func

app = func.FunctionApp()


@app.route(route="enqueue/{item}", auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="out", queue_name="%IN_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.route_params["item"])
    return func.HttpResponse("queued")


@app.queue_trigger(arg_name="msg", queue_name="%IN_QUEUE%", connection="AzureWebJobsStorage")
def worker(msg: func.QueueMessage) -> None:
    logging.info("worked %s", msg.get_body().decode())
"""


def test_an_output_binding_of_the_same_host_wakes_the_listener(storage: str, tmp_path: Path) -> None:
    """Default maxPollingInterval (1 minute): the listener is woken by the write, not by its next poll."""
    name = f"watched{int(time.time() * 1000) % 10**8}"
    ensure_queue(queue_client(storage, name))
    host = launch(tmp_path / "watcher", WATCHER_APP, settings={"AzureWebJobsStorage": storage, "IN_QUEUE": name})
    try:
        # Idle until the back-off is long: polls land at about 0.2, 0.5, 1, 1.9, 3.6, 6.9 (5.6-8.2) and
        # 13.4 (10.9-15.9) s, so after 9 s the next poll is at least ~1.8 s away. That is what is measured.
        time.sleep(9)
        started = time.monotonic()
        assert host.post("/api/enqueue/item-1", None).status == 200
        host.wait_log(r"worked item-1", timeout=10)
        elapsed = time.monotonic() - started
        print(f"pickup latency of a message written by this host: {elapsed * 1000:.0f} ms")
        assert elapsed < 1.0
    finally:
        host.stop()
