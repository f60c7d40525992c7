"""The reference app's storage-backed functions, against Azurite.

Orders on the queue `orders-inbox` start the chaining workflow (a bad one ends, unchanged, in
`orders-inbox-poison`), and `POST/GET /api/word-counts/{id}/report` write and read the blob
`reports/{id}.json` through blob bindings.

The host under test must use the same storage as the test. The session's funcemu host does when it
already talks to this Azurite (`--funcemu-storage azure`, or an Azurite on 127.0.0.1:10000-10002, which
local.settings.json's UseDevelopmentStorage=true names); otherwise this module starts a funcemu host of
its own with AzureWebJobsStorage set to the Azurite. With --funcemu-url the host must use the Azurite on
the default ports, as `func start` with local.settings.json does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from funcemu.testing import Azurite, DurableClient, EmulatorHost, Host
from funcemu.testing.plugin import HOSTS

pytestmark = pytest.mark.azurite

INBOX = "orders-inbox"
POISON = "orders-inbox-poison"
T = TypeVar("T")


def order(order_id: str) -> dict[str, Any]:
    return {
        "orderId": order_id,
        "customer": "ada@example.com",
        "items": [{"sku": "BOOK-1", "quantity": 2, "unitPrice": 12.5}],
    }


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns a value; AssertionError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while (value := check()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.25)
    return value


# -- which host, which storage ---------------------------------------------------------------------


def queue_endpoint(connection: str) -> str:
    return QueueServiceClient.from_connection_string(connection).url.rstrip("/").lower()


def session_storage(host: EmulatorHost) -> str:
    """The AzureWebJobsStorage the session host got: its environment, else local.settings.json."""
    configured = host.env.get("AzureWebJobsStorage")
    if configured:
        return configured
    settings = json.loads((host.app / "local.settings.json").read_text())
    return str(settings["Values"]["AzureWebJobsStorage"])


@pytest.fixture(scope="module")
def storage_host(
    request: pytest.FixtureRequest, funcemu_host: Host, azurite: Azurite, funcemu_app_path: Path
) -> Iterator[Host]:
    """A host of the app that uses `azurite` (see the module docstring)."""
    shared = not isinstance(funcemu_host, EmulatorHost)
    if isinstance(funcemu_host, EmulatorHost) and funcemu_host.is_running():
        shared = queue_endpoint(session_storage(funcemu_host)) == queue_endpoint(azurite.connection_string)
    if shared:  # a second host would compete with it for the inbox's messages
        yield funcemu_host
        return
    env = {"AzureWebJobsStorage": azurite.connection_string}
    with EmulatorHost(funcemu_app_path, storage="memory", env=env) as host:
        hosts = request.config.stash[HOSTS]
        hosts.append(host)  # so the plugin attaches its log to failing tests
        try:
            yield host
        finally:
            hosts.remove(host)


@pytest.fixture
def client(storage_host: Host, funcemu_timeout: float) -> DurableClient:
    assert storage_host.is_running(), storage_host.log_since(0)
    return DurableClient(storage_host.http, timeout=funcemu_timeout)


def queue(azurite: Azurite, name: str) -> QueueClient:
    """A queue client that encodes and decodes base64, as the host's default messageEncoding does."""
    found = QueueClient.from_connection_string(
        azurite.connection_string,
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )
    try:
        found.create_queue()  # the trigger polls the inbox; it does not create it
    except ResourceExistsError:
        pass
    return found


def take(client: QueueClient, content: str) -> str | None:
    """Receive until the message with `content` shows up, delete it and return it; None if absent."""
    try:
        for message in client.receive_messages(max_messages=32, visibility_timeout=1):
            if message.content == content:
                client.delete_message(message)
                return str(message.content)
    except ResourceNotFoundError:  # the host creates the poison queue with its first message
        return None
    return None


# -- the queue of orders ---------------------------------------------------------------------------


def test_a_queued_order_runs_the_chaining_workflow(client: DurableClient, azurite: Azurite) -> None:
    order_id = f"Q-{uuid.uuid4().hex[:8]}"
    sent = queue(azurite, INBOX).send_message(json.dumps(order(order_id)))

    output = client.wait_for_output(f"inbox-{sent.id}", timeout=client.timeout + 5)  # + the queue's polling

    assert output["orderId"] == order_id
    assert output["status"] == "confirmed"
    assert output["total"] == 30.0  # 2 x 12.50, plus 5.00 shipping under 100


@pytest.mark.parametrize(
    "body",
    ['{"orderId": "BAD-%s", "items": []}', "BAD-%s is not JSON", '["BAD-%s"]'],
    ids=["invalid order", "not JSON", "not an object"],
)
def test_a_bad_message_ends_in_the_poison_queue_unchanged(
    body: str, client: DurableClient, storage_host: Host, azurite: Azurite
) -> None:
    content = body % uuid.uuid4().hex
    sent = queue(azurite, INBOX).send_message(content)

    poisoned = wait_until(
        lambda: take(queue(azurite, POISON), content), client.timeout + 10, "the poison queue"
    )

    assert poisoned == content
    assert client.status(f"inbox-{sent.id}") is None
    if storage_host.is_emulator:
        log = storage_host.log_since(0)
        assert f"Message has reached MaxDequeueCount of 5. Moving message to queue '{POISON}'." in log


# -- word-count reports in blobs ---------------------------------------------------------------------


def word_count(client: DurableClient) -> str:
    documents = [{"name": "a.txt", "text": "to be or not to be"}, {"name": "b.txt", "text": "be quick"}]
    instance_id = client.start_via("/api/word-counts", json={"documents": documents, "top": 2})
    client.wait_for_output(instance_id)
    return instance_id


def test_a_report_is_written_to_a_blob_and_read_back(
    client: DurableClient, storage_host: Host, azurite: Azurite
) -> None:
    instance_id = word_count(client)

    written = storage_host.post(f"/api/word-counts/{instance_id}/report")
    read = storage_host.get(f"/api/word-counts/{instance_id}/report")

    assert written.status == 201, written
    report = written.json()
    assert report["instanceId"] == instance_id
    assert report["summary"]["topWords"] == [{"word": "be", "count": 3}, {"word": "to", "count": 2}]
    assert (written.header("Location") or "").endswith(f"/api/word-counts/{instance_id}/report")
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    stored = blobs.get_blob_client("reports", f"{instance_id}.json").download_blob().readall()
    assert json.loads(stored) == report
    assert (read.status, read.json()) == (200, report)
    assert (read.header("Content-Type") or "").startswith("application/json")


def test_a_report_needs_a_completed_word_count(client: DurableClient, storage_host: Host) -> None:
    failed = client.start("word_count_workflow", None)  # no documents: the orchestrator fails
    assert client.wait_for_completion(failed)["runtimeStatus"] == "Failed"
    order_instance = client.start_via("/api/orders", json=order("R-1"))

    unfinished = storage_host.post(f"/api/word-counts/{failed}/report")
    not_a_word_count = storage_host.post(f"/api/word-counts/{order_instance}/report")
    unknown = storage_host.post("/api/word-counts/no-such-instance/report")

    assert unfinished.status == 409, unfinished
    assert unfinished.json() == {
        "error": f"word count '{failed}' is Failed: only a completed word count has a report"
    }
    assert (not_a_word_count.status, unknown.status) == (404, 404)
    assert unknown.json() == {"error": "no word count has the id 'no-such-instance'"}


def test_reading_a_report_that_was_never_written_is_404(storage_host: Host) -> None:
    response = storage_host.get("/api/word-counts/never-written/report")

    assert response.status == 404, response
    assert response.json() == {
        "error": "no report for word count 'never-written' yet: "
        "POST /api/word-counts/never-written/report writes it"
    }
