"""A blob trigger with source EventGrid (docs §5.3) against Azurite: no container scan; events posted to
`/runtime/webhooks/blobs?functionName=Host.Functions.<name>` run the function for the blob."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from trigger_support import AppHost, ensure_queue, peek_all, queue_client, wait_until

from funcemu.testing.httpclient import HttpClient, Response

pytestmark = pytest.mark.azurite

APP = """
import json

import azure.functions as func

app = func.FunctionApp()


@app.blob_trigger(arg_name="blob", path="%IN_CONTAINER%/{name}", connection="AzureWebJobsStorage",
                  source=func.BlobSource.EVENT_GRID)
@app.queue_output(arg_name="$return", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def on_event(blob: func.InputStream) -> str:
    return json.dumps({"name": blob.name, "content": blob.read().decode()})
"""
WEBHOOK = "/runtime/webhooks/blobs?functionName=Host.Functions.on_event"


class EventGridApp:
    def __init__(self, storage: str, start_app: Callable[..., AppHost], unique: Callable[[str], str]) -> None:
        self.names = {"IN_CONTAINER": unique("eg"), "OUT_QUEUE": unique("egout")}
        self.blobs = BlobServiceClient.from_connection_string(storage)
        self.container = self.blobs.create_container(self.names["IN_CONTAINER"])
        self.outbox = ensure_queue(queue_client(storage, self.names["OUT_QUEUE"], encoding="none"))
        host_json = {"extensions": {"queues": {"maxPollingInterval": "00:00:00.500", "messageEncoding": "none"}}}
        self.host = start_app(APP, settings={"AzureWebJobsStorage": storage, **self.names}, host_json=host_json)
        self.http = HttpClient(self.host.url)

    def upload(self, name: str, content: bytes) -> Any:
        return self.container.get_blob_client(name).upload_blob(content, overwrite=True)

    def post(self, body: Any, kind: str = "Notification") -> Response:
        return self.http.post(WEBHOOK, body, headers={"aeg-event-type": kind})

    def runs(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in peek_all(self.outbox)]


@pytest.fixture
def app(storage: str, start_app: Callable[..., AppHost], unique: Callable[[str], str]) -> Iterator[EventGridApp]:
    yield EventGridApp(storage, start_app, unique)


def created(app: EventGridApp, name: str, etag: str) -> dict[str, Any]:
    url = app.container.get_blob_client(name).url
    return {"id": "1", "eventType": "Microsoft.Storage.BlobCreated", "subject": f"/blobServices/default/containers/"
            f"{app.names['IN_CONTAINER']}/blobs/{name}", "eventTime": "2024-01-01T00:00:00Z", "dataVersion": "",
            "data": {"api": "PutBlob", "url": url, "eTag": etag, "blobType": "BlockBlob"}}


def test_an_uploaded_blob_runs_only_when_its_event_is_posted(app: EventGridApp) -> None:
    written = app.upload("a.txt", b"hello")
    time.sleep(4)                                   # two scan intervals of a LogsAndContainerScan trigger
    assert app.runs() == []
    response = app.post([created(app, "a.txt", written["etag"])])
    assert (response.status, response.body) == (202, b"")
    [run] = wait_until(app.runs, 20, "the function run for the posted event")
    assert run == {"name": f"{app.names['IN_CONTAINER']}/a.txt", "content": "hello"}
    app.host.wait_log(r"New blob detected\(EventGrid\): " + app.names["IN_CONTAINER"] + "/a.txt")


def test_the_subscription_validation_handshake_and_other_event_types(app: EventGridApp) -> None:
    validation = [{"id": "2", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                   "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]
    response = app.post(validation, kind="SubscriptionValidation")
    assert response.status == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert app.post([], kind="Unsubscribe").status == 202
    assert app.post([], kind="Other").status == 400
    assert app.http.post(WEBHOOK, []).status == 400          # no aeg-event-type header
    assert app.http.get(WEBHOOK).status == 404
