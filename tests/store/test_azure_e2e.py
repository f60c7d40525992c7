"""The reference app's four Durable patterns on `funcemu start --storage azure` with Azurite, end to end over
HTTP, and the task hub they leave behind read back with azure-data-tables in the provider's layout
(docs/azure-storage-taskhub.md §3, §4)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azurite_support import delete_hub
from durable_support import wait_status, wait_until
from support import HostProcess, Reply, request

from funcemu.durable import history
from funcemu.durable.store.azure import DEFAULT_MAX_POLLING_INTERVAL, AzureStore
from funcemu.durable.store.base import Message
from funcemu.testing.azurite import Azurite

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]
ORDER = {"orderId": "A-1001", "customer": "ada@example.com",
         "items": [{"sku": "BOOK-1", "quantity": 2, "unitPrice": 12.5},
                   {"sku": "PEN-7", "quantity": 3, "unitPrice": 1.2}]}
APPROVAL = {"requester": "ada", "approver": "grace", "amount": 420.0, "description": "Conference ticket"}
TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")
SLACK = 2.0   # seconds for the episode and a busy CI machine; the provider's default would take up to 30 s


class ReferenceApp:
    """The reference app on one host; `hub` is its task hub in Azurite."""

    def __init__(self, host: HostProcess, hub: str, connection: str) -> None:
        self.host, self.hub, self.connection = host, hub, connection

    def post(self, path: str, body: Any = None) -> Reply:
        return self.host.call("POST", path, body)

    def start(self, path: str, body: Any) -> dict[str, Any]:
        """POST a starter route; the check-status payload it answers with."""
        reply = self.post(path, body)
        assert reply.status == 202, (reply.status, reply.text)
        payload: dict[str, Any] = reply.json()
        return payload

    def finished(self, instance_id: str) -> dict[str, Any]:
        return wait_status(self.host, instance_id, *TERMINAL, timeout=30)


@pytest.fixture(scope="module")
def app(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceApp]:
    hub = "e2e" + uuid.uuid4().hex[:12]
    env = {"AzureWebJobsStorage": azurite.connection_string,
           "AzureFunctionsJobHost__extensions__durableTask__hubName": hub}
    host = HostProcess(ROOT, "--storage", "azure", "--data-dir", str(tmp_path_factory.mktemp("reference")),
                       env=env).start()
    try:
        yield ReferenceApp(host, hub, azurite.connection_string)
    finally:
        host.stop()
        delete_hub(azurite.connection_string, hub)


def event_types(final: dict[str, Any]) -> list[str]:
    return [event["EventType"] for event in final["historyEvents"]]


def completed_activities(final: dict[str, Any]) -> list[str]:
    return [event["FunctionName"] for event in final["historyEvents"] if event["EventType"] == "TaskCompleted"]


# the four patterns


def test_chaining_runs_every_step_in_order(app: ReferenceApp) -> None:
    final = app.finished(app.start("/api/orders", ORDER)["id"])

    assert final["runtimeStatus"] == "Completed", final
    assert final["output"]["status"] == "confirmed" and final["output"]["total"] == 33.6
    assert completed_activities(final) == ["price_order", "reserve_inventory", "charge_payment",
                                           "send_confirmation"]


def test_fan_out_counts_documents_in_parallel_then_merges(app: ReferenceApp) -> None:
    documents = [{"name": f"doc-{index:02}.txt", "text": "alpha " * (index + 1) + "Beta gamma."}
                 for index in range(20)]

    final = app.finished(app.start("/api/word-counts", {"documents": documents, "top": 3})["id"])

    assert final["runtimeStatus"] == "Completed", final
    assert final["output"]["totalWords"] == 250 and final["output"]["documents"] == 20
    assert final["output"]["topWords"][0] == {"word": "alpha", "count": 210}
    names = completed_activities(final)
    assert sorted(names[:-1]) == ["count_words"] * 20 and names[-1] == "merge_word_counts"


def poll_progress(app: ReferenceApp, url: str, timeout: float) -> tuple[list[Any], Reply]:
    """GET statusQueryGetUri as a client would: the custom statuses seen, then the final 200 answer."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = request("GET", url)
        if reply.status == 200:
            return seen, reply
        assert reply.status == 202 and reply.headers.get("location"), (reply.status, reply.text)
        status = reply.json()["customStatus"]
        if status and status not in seen:
            seen.append(status)
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s; progress seen: {seen}")


def test_async_http_api_reports_progress_in_the_custom_status(app: ReferenceApp) -> None:
    job = {"dataset": "customers", "records": 1200, "batchSize": 500, "throttleSeconds": 0.4}
    payload = app.start("/api/exports", job)

    seen, final = poll_progress(app, payload["statusQueryGetUri"], 30)

    body = final.json()
    assert body["runtimeStatus"] == "Completed" and body["output"]["exportedRecords"] == 1200
    percents = [status["percentComplete"] for status in seen]
    assert percents == sorted(percents) and any(0 < percent < 100 for percent in percents), seen
    assert body["customStatus"]["stage"] == "completed" and body["customStatus"]["percentComplete"] == 100


def awaiting_approval(app: ReferenceApp, instance_id: str) -> bool:
    reply = app.host.call("GET", f"/runtime/webhooks/durabletask/instances/{instance_id}")
    return reply.status in (200, 202) and (reply.json().get("customStatus") or {}).get("stage") == "awaitingApproval"


def test_human_interaction_approval_beats_the_timer(app: ReferenceApp) -> None:
    instance_id = app.start("/api/approvals", APPROVAL)["id"]
    wait_until(lambda: awaiting_approval(app, instance_id), 15, "the approval request to wait")

    decided = app.post(f"/api/approvals/{instance_id}/approve", {"approver": "grace", "comment": "enjoy"})

    assert decided.status == 202, decided.text
    final = app.finished(instance_id)
    assert final["output"]["status"] == "approved" and final["output"]["decidedBy"] == "grace"
    assert "EventRaised" in event_types(final) and "TimerFired" not in event_types(final)


def test_human_interaction_timeout_escalates(app: ReferenceApp) -> None:
    instance_id = app.start("/api/approvals", {**APPROVAL, "timeoutSeconds": 0.5})["id"]

    final = app.finished(instance_id)

    assert final["output"] == {"requestId": instance_id, "status": "escalated", "amount": 420.0,
                               "escalatedTo": "finance-managers"}
    assert "TimerFired" in event_types(final) and "EventRaised" not in event_types(final)


async def send_from_elsewhere(app: ReferenceApp, instance_id: str, name: str, value: Any) -> None:
    """Another process's send (a second host, a DTFx client): the host finds it only by polling."""
    store = AzureStore(app.connection, app.hub)
    await store.open()
    try:
        event = history.event_raised(datetime.now(timezone.utc), name, json.dumps(value))
        await store.send_messages([Message(instance_id, event)])
    finally:
        await store.close()


def test_an_event_sent_by_another_process_wakes_an_idle_instance_within_the_polling_interval(
        app: ReferenceApp) -> None:
    instance_id = app.start("/api/approvals", APPROVAL)["id"]
    wait_until(lambda: awaiting_approval(app, instance_id), 15, "the approval request to wait")

    sent = time.monotonic()
    asyncio.run(send_from_elsewhere(app, instance_id, "ApprovalDecision", {"approved": True, "decidedBy": "lin"}))
    final = app.finished(instance_id)

    assert final["output"]["status"] == "approved" and final["output"]["decidedBy"] == "lin"
    assert time.monotonic() - sent < DEFAULT_MAX_POLLING_INTERVAL + SLACK, "the host polled too slowly"


# the tables, as Storage Explorer or DF Monitor read them


def table_rows(app: ReferenceApp, table: str, instance_id: str) -> list[dict[str, Any]]:
    with TableServiceClient.from_connection_string(app.connection) as service:
        client = service.get_table_client(table)
        return [dict(row) for row in client.query_entities(f"PartitionKey eq '{instance_id}'")]


def test_history_and_instance_rows_are_in_the_documented_columns(app: ReferenceApp) -> None:
    instance_id = app.start("/api/orders", {**ORDER, "orderId": "A-2002"})["id"]
    final = app.finished(instance_id)

    [instance] = table_rows(app, f"{app.hub}Instances", instance_id)
    history = {row["RowKey"]: row for row in table_rows(app, f"{app.hub}History", instance_id)}

    assert instance["RowKey"] == "" and instance["Name"] == "order_workflow"
    assert instance["RuntimeStatus"] == "Completed" and instance["TaskHubName"] == app.hub
    assert json.loads(instance["Output"]) == final["output"]
    assert "A-2002" in instance["Input"]  # the Python client's JSON text of the JSON text of the order
    assert all(isinstance(instance[column], datetime) for column in ("CreatedTime", "LastUpdatedTime",
                                                                     "CompletedTime"))
    sentinel = history.pop("sentinel")
    assert sentinel["ExecutionId"] == instance["ExecutionId"] and sentinel["IsCheckpointComplete"] is True
    keys = sorted(history)
    assert keys == [f"{index:016X}" for index in range(len(keys))]
    rows = [history[key] for key in keys]
    assert all(row["ExecutionId"] == instance["ExecutionId"] for row in rows)
    assert all(isinstance(row["_Timestamp"], datetime) and "IsPlayed" in row and "EventId" in row for row in rows)
    kinds = [row["EventType"] for row in rows]
    assert kinds[:2] == ["OrchestratorStarted", "ExecutionStarted"] and kinds[-1] == "OrchestratorCompleted"
    assert kinds.count("TaskScheduled") == kinds.count("TaskCompleted") == 4
    scheduled = {row["EventId"]: row["Name"] for row in rows if row["EventType"] == "TaskScheduled"}
    completed = [scheduled[row["TaskScheduledId"]] for row in rows if row["EventType"] == "TaskCompleted"]
    assert completed == ["price_order", "reserve_inventory", "charge_payment", "send_confirmation"]
    [done] = [row for row in rows if row["EventType"] == "ExecutionCompleted"]
    assert done["OrchestrationStatus"] == "Completed" and json.loads(done["Result"]) == final["output"]
