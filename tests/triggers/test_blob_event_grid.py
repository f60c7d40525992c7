"""Event Grid blob events -> host queue messages (funcemu/triggers/blob.py, docs §5.3), without Azurite."""

from __future__ import annotations

import pytest

from funcemu.triggers.blob import blob_created_message


def event(url: str, **data: str) -> dict[str, object]:
    return {"eventType": "Microsoft.Storage.BlobCreated", "subject": "ignored", "data": {"url": url, **data}}


def test_an_azure_url_names_container_and_blob() -> None:
    message = blob_created_message(event("https://acct.blob.core.windows.net/in/dir/a%20b.txt",
                                         eTag="0x8D1", blobType="BlockBlob"), "Host.Functions.f")
    assert message == {"Type": "BlobTrigger", "FunctionId": "Host.Functions.f", "BlobType": "BlockBlob",
                       "ContainerName": "in", "BlobName": "dir/a b.txt", "ETag": "0x8D1"}


@pytest.mark.parametrize("url", ["http://127.0.0.1:10000/devstoreaccount1/in/a.txt",
                                 "http://localhost:10000/devstoreaccount1/in/a.txt",
                                 "http://azurite:10000/devstoreaccount1/in/a.txt"])
def test_an_emulator_url_has_the_account_first(url: str) -> None:
    message = blob_created_message(event(url), "Host.Functions.f")
    assert (message["ContainerName"], message["BlobName"], message["BlobType"]) == ("in", "a.txt", "BlockBlob")


@pytest.mark.parametrize("bad", [{"data": {}}, {"nodata": 1}, event("https://acct.blob.core.windows.net/in")])
def test_an_event_without_a_blob_url_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises((KeyError, ValueError)):
        blob_created_message(bad, "Host.Functions.f")
