"""Blob trigger with receipts, blob input and table bindings end to end: a funcemu process against Azurite."""

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

from funcemu.testing.httpclient import HttpClient

pytestmark = pytest.mark.azurite

APP = """
import json
import logging

import azure.functions as func

app = func.FunctionApp()


@app.blob_trigger(arg_name="blob", path="%IN_CONTAINER%/{name}", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="$return", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
@app.blob_output(arg_name="copy", path="%OUT_CONTAINER%/{name}.copy", connection="AzureWebJobsStorage")
def on_blob(blob: func.InputStream, copy: func.Out[bytes]) -> str:
    content = blob.read()
    logging.info("blob %s run", blob.name)
    if content.startswith(b"fail"):
        raise ValueError("cannot handle " + blob.name)
    copy.set(content[::-1])
    return json.dumps({"name": blob.name, "uri": blob.uri, "length": blob.length,
                       "content": content.decode(), "type": type(blob).__name__})


@app.queue_trigger(arg_name="msg", queue_name="%LOAD_QUEUE%", connection="AzureWebJobsStorage")
@app.blob_input(arg_name="doc", path="%IN_CONTAINER%/{queueTrigger}", connection="AzureWebJobsStorage")
@app.blob_input(arg_name="missing", path="%IN_CONTAINER%/nothing-{rand-guid}", connection="AzureWebJobsStorage")
@app.table_output(arg_name="row", table_name="%TABLE%", partition_key="docs", connection="AzureWebJobsStorage")
def load(msg: str, doc: func.InputStream, missing: func.InputStream, row: func.Out[str]) -> None:
    data = doc.read()
    row.set(json.dumps({"RowKey": msg, "Size": len(data), "Text": data.decode(), "Missing": missing is None,
                        "DocType": type(doc).__name__}))


@app.route(route="rows/{pk}/{rk}", auth_level=func.AuthLevel.ANONYMOUS)
@app.table_input(arg_name="entity", table_name="%TABLE%", partition_key="{pk}", row_key="{rk}",
                 connection="AzureWebJobsStorage")
def get_row(req: func.HttpRequest, entity: str) -> func.HttpResponse:
    return func.HttpResponse(entity or "null", mimetype="application/json")


@app.route(route="rows/{pk}", auth_level=func.AuthLevel.ANONYMOUS)
@app.table_input(arg_name="rows", table_name="%TABLE%", partition_key="{pk}", take=10,
                 connection="AzureWebJobsStorage")
def list_rows(req: func.HttpRequest, rows: str) -> func.HttpResponse:
    return func.HttpResponse(rows, mimetype="application/json")
"""


class BlobApp:
    def __init__(self, storage: str, folder: Path) -> None:
        stamp = str(int(time.time() * 1000))[-9:]
        self.names = {"IN_CONTAINER": f"in{stamp}", "OUT_CONTAINER": f"out{stamp}", "OUT_QUEUE": f"blobs{stamp}",
                      "LOAD_QUEUE": f"load{stamp}", "TABLE": f"rows{stamp}"}
        self.storage, self.folder = storage, folder
        self.blobs = BlobServiceClient.from_connection_string(storage)
        self.blobs.create_container(self.names["IN_CONTAINER"])
        ensure_queue(queue_client(storage, self.names["LOAD_QUEUE"]))
        self.outbox = queue_client(storage, self.names["OUT_QUEUE"])
        self.seen: list[dict[str, Any]] = []
        self.host = self.start()

    def start(self) -> AppHost:
        settings = {"AzureWebJobsStorage": self.storage, **self.names}
        host_json = {"extensions": {"queues": {"maxPollingInterval": "00:00:00.500"}}}
        return launch(self.folder, APP, settings=settings, host_json=host_json)

    def upload(self, name: str, content: bytes) -> None:
        self.blobs.get_blob_client(self.names["IN_CONTAINER"], name).upload_blob(content, overwrite=True)

    def outputs_for(self, name: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Collect output messages until `count` are about blob `name`."""
        def collect() -> list[dict[str, Any]]:
            for message in self.outbox.receive_messages(max_messages=32):
                self.seen.append(json.loads(message.content))
                self.outbox.delete_message(message)
            return [m for m in self.seen if m["name"].endswith("/" + name)][:count] \
                if len([m for m in self.seen if m["name"].endswith("/" + name)]) >= count else []
        ensure_queue(self.outbox)
        return wait_until(collect, timeout, f"{count} run(s) for blob {name}")


@pytest.fixture(scope="module")
def blob_app(storage: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlobApp]:
    app = BlobApp(storage, tmp_path_factory.mktemp("blob-app"))
    try:
        yield app
    finally:
        app.host.stop()


def runs(app: BlobApp, name: str) -> list[dict[str, Any]]:
    return [m for m in app.seen if m["name"].endswith("/" + name)]


def test_a_new_blob_triggers_with_an_input_stream(blob_app: BlobApp) -> None:
    blob_app.upload("a.txt", b"hello")
    [run] = blob_app.outputs_for("a.txt")
    container = blob_app.names["IN_CONTAINER"]
    assert run["name"] == f"{container}/a.txt"
    assert run["length"] == 5 and run["content"] == "hello" and run["type"] == "InputStream"
    assert run["uri"].endswith(f"/{container}/a.txt")
    copy = blob_app.blobs.get_blob_client(blob_app.names["OUT_CONTAINER"], "a.txt.copy")
    assert copy.download_blob().readall() == b"olleh"


def test_a_blob_triggers_once_and_a_new_version_again(blob_app: BlobApp) -> None:
    blob_app.upload("once.txt", b"v1")
    blob_app.outputs_for("once.txt")
    blob_app.upload("zz-later.txt", b"x")          # by the time this one ran, once.txt was scanned again
    blob_app.outputs_for("zz-later.txt")
    assert [r["content"] for r in runs(blob_app, "once.txt")] == ["v1"]
    blob_app.upload("once.txt", b"v2")
    blob_app.outputs_for("once.txt", count=2)
    assert [r["content"] for r in runs(blob_app, "once.txt")] == ["v1", "v2"]


def test_receipts_are_kept_in_azure_webjobs_hosts(blob_app: BlobApp) -> None:
    blob_app.upload("receipt.txt", b"r")
    blob_app.outputs_for("receipt.txt")
    hosts = blob_app.blobs.get_container_client("azure-webjobs-hosts")
    names = [b.name for b in hosts.list_blobs(name_starts_with="blobreceipts/")]
    mine = [n for n in names if n.endswith(f"/{blob_app.names['IN_CONTAINER']}/receipt.txt")]
    assert len(mine) == 1 and "/Host.Functions.on_blob/" in mine[0]
    etag = blob_app.blobs.get_blob_client(blob_app.names["IN_CONTAINER"], "receipt.txt").get_blob_properties().etag
    assert f"/Host.Functions.on_blob/{etag}/" in mine[0] and etag.startswith('"')   # BlobProperties.ETag, quoted
    assert hosts.get_blob_client(mine[0]).get_blob_properties().metadata == {}    # complete: no Incomplete key


def test_a_restarted_host_does_not_run_old_blobs_again(blob_app: BlobApp) -> None:
    blob_app.upload("before.txt", b"b")
    blob_app.outputs_for("before.txt")
    blob_app.host.stop()
    already = len(blob_app.seen)
    blob_app.host = blob_app.start()
    blob_app.upload("zzz-after.txt", b"a")          # listed last: every older blob was checked before it
    blob_app.outputs_for("zzz-after.txt")
    assert [run["name"].rsplit("/", 1)[1] for run in blob_app.seen[already:]] == ["zzz-after.txt"]


def test_a_failing_blob_is_retried_then_poisoned(blob_app: BlobApp) -> None:
    blob_app.upload("bad.txt", b"fail please")
    poison = queue_client(blob_app.storage, "webjobs-blobtrigger-poison", encoding="none")

    def poisoned() -> list[dict[str, Any]]:
        found = [json.loads(base64.b64decode(c)) for c in peek_all(poison)]
        return [m for m in found if m["BlobName"] == "bad.txt"
                and m["ContainerName"] == blob_app.names["IN_CONTAINER"]]
    [message] = wait_until(poisoned, 40, "the blob trigger poison message")
    assert message["FunctionId"] == "Host.Functions.on_blob" and message["ETag"]
    assert blob_app.host.log().count(f"blob {blob_app.names['IN_CONTAINER']}/bad.txt run") == 5


def test_admin_api_runs_a_blob_function_for_a_path(blob_app: BlobApp) -> None:
    blob_app.upload("manual.txt", b"m")
    blob_app.outputs_for("manual.txt")
    response = blob_app.host.post("/admin/functions/on_blob", {"input": f"{blob_app.names['IN_CONTAINER']}/manual.txt"})
    assert response.status == 202
    blob_app.outputs_for("manual.txt", count=2)


def test_blob_input_and_table_output_and_input(blob_app: BlobApp) -> None:
    blob_app.upload("doc.txt", b"document body")
    blob_app.outputs_for("doc.txt")
    queue_client(blob_app.storage, blob_app.names["LOAD_QUEUE"]).send_message("doc.txt")
    http = HttpClient(blob_app.host.url)
    entity = wait_until(lambda: http.get("/api/rows/docs/doc.txt").json(), 20, "the table row")
    assert entity["PartitionKey"] == "docs" and entity["RowKey"] == "doc.txt"
    assert (entity["Size"], entity["Text"], entity["Missing"], entity["DocType"]) == (13, "document body", True,
                                                                                   "InputStream")
    assert "Timestamp" in entity
    assert http.get("/api/rows/docs/nope").json() is None
    rows = http.get("/api/rows/docs").json()
    assert [r["RowKey"] for r in rows] == ["doc.txt"]
