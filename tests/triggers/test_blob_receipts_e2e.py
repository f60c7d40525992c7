"""Blob receipts as the storage extension writes them, container-only paths and empty captures, against Azurite.

BlobReceipt: an incomplete receipt has metadata `Incomplete`, a complete one has not; the receipt name
holds the ETag as BlobProperties.ETag gives it (quoted). funcemu's older receipts (unquoted ETag,
`IsCompleted: true|false`) are still honoured.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from trigger_support import AppHost, ensure_queue, launch, queue_client, wait_until

pytestmark = pytest.mark.azurite

APP = """
import azure.functions as func

app = func.FunctionApp()


@app.blob_trigger(arg_name="blob", path="%WHOLE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="$return", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def whole_container(blob: func.InputStream) -> str:
    return "whole " + blob.name


@app.blob_trigger(arg_name="blob", path="%PARTS%/{name}.{blobextension}", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="$return", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def with_extension(blob: func.InputStream) -> str:
    return "parts " + blob.name
"""


class ReceiptApp:
    def __init__(self, storage: str, folder: Path) -> None:
        stamp = str(int(time.time() * 1000))[-9:]
        self.names = {"WHOLE": f"whole{stamp}", "PARTS": f"parts{stamp}", "OUT_QUEUE": f"receipts{stamp}"}
        self.storage, self.folder = storage, folder
        self.blobs = BlobServiceClient.from_connection_string(storage)
        for container in ("WHOLE", "PARTS"):
            self.blobs.create_container(self.names[container])
        self.outbox = ensure_queue(queue_client(storage, self.names["OUT_QUEUE"]))
        self.seen: list[str] = []
        self.host = self.start()

    def start(self) -> AppHost:
        return launch(self.folder, APP, settings={"AzureWebJobsStorage": self.storage, **self.names},
                      host_json={"extensions": {"queues": {"maxPollingInterval": "00:00:00.500"}}})

    def upload(self, container: str, name: str) -> str:
        blob = self.blobs.get_blob_client(self.names[container], name)
        blob.upload_blob(b"x", overwrite=True)
        return str(blob.get_blob_properties().etag)

    def wait_for(self, text: str) -> None:
        def collect() -> bool:
            for message in self.outbox.receive_messages(max_messages=32):
                self.seen.append(message.content)
                self.outbox.delete_message(message)
            return text in self.seen
        wait_until(collect, 20, text)

    def receipts(self) -> dict[str, dict[str, str]]:
        hosts = self.blobs.get_container_client("azure-webjobs-hosts")
        return {b.name: dict(b.metadata or {}) for b in hosts.list_blobs(name_starts_with="blobreceipts/",
                                                                         include=["metadata"])}


@pytest.fixture(scope="module")
def receipt_app(storage: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiptApp]:
    app = ReceiptApp(storage, tmp_path_factory.mktemp("receipt-app"))
    try:
        yield app
    finally:
        app.host.stop()


def test_a_container_only_path_fires_for_every_blob(receipt_app: ReceiptApp) -> None:
    whole = receipt_app.names["WHOLE"]
    receipt_app.upload("WHOLE", "a.txt")
    receipt_app.upload("WHOLE", "dir/b")
    receipt_app.wait_for(f"whole {whole}/a.txt")
    receipt_app.wait_for(f"whole {whole}/dir/b")


def test_a_parameter_may_capture_nothing(receipt_app: ReceiptApp) -> None:
    receipt_app.upload("PARTS", "noext.")
    receipt_app.wait_for(f"parts {receipt_app.names['PARTS']}/noext.")


def test_receipts_left_by_the_real_host_or_older_funcemu_are_honoured(receipt_app: ReceiptApp) -> None:
    whole = receipt_app.names["WHOLE"]
    receipt_app.upload("WHOLE", "probe.txt")
    receipt_app.wait_for(f"whole {whole}/probe.txt")
    [probe] = [n for n in receipt_app.receipts() if n.endswith(f"/{whole}/probe.txt")]
    prefix = probe.split("/Host.Functions.whole_container/")[0] + "/Host.Functions.whole_container"
    receipt_app.host.stop()

    hosts = receipt_app.blobs.get_container_client("azure-webjobs-hosts")
    receipts = {"done.txt": ("quoted", {}), "half.txt": ("quoted", {"Incomplete": "Incomplete"}),
                "old-done.txt": ("bare", {"IsCompleted": "true"}), "old-half.txt": ("bare", {"IsCompleted": "false"})}
    for name, (form, metadata) in receipts.items():
        etag = receipt_app.upload("WHOLE", name)
        etag = etag if form == "quoted" else etag.strip('"')
        hosts.upload_blob(f"{prefix}/{etag}/{whole}/{name}", b"", metadata=metadata, overwrite=True)
    receipt_app.host = receipt_app.start()
    receipt_app.upload("WHOLE", "zzz-last.txt")         # listed last: every other blob was checked first
    receipt_app.wait_for(f"whole {whole}/zzz-last.txt")
    receipt_app.wait_for(f"whole {whole}/half.txt")
    receipt_app.wait_for(f"whole {whole}/old-half.txt")
    ran = [m for m in receipt_app.seen if m.startswith(f"whole {whole}/")]
    assert f"whole {whole}/done.txt" not in ran and f"whole {whole}/old-done.txt" not in ran
    assert ran.count(f"whole {whole}/probe.txt") == 1
    after = receipt_app.receipts()
    [half] = [n for n in after if n.endswith(f"/{whole}/half.txt")]
    assert after[half] == {}                             # marked complete by dropping `Incomplete`
