"""GET /api/orchestrations/{instanceId}: an orchestration's status with its full history."""

from typing import Any

from funcemu.testing import DurableClient, Host

ORDER = {
    "orderId": "H-1",
    "customer": "ada@example.com",
    "items": [{"sku": "BOOK-1", "quantity": 1, "unitPrice": 150}],
}


def finished_order(durable_client: DurableClient) -> tuple[str, dict[str, Any]]:
    instance_id = durable_client.start_via("/api/orders", json=ORDER)
    return instance_id, durable_client.wait_for_completion(instance_id)


def test_shows_status_and_full_history(funcemu: Host, durable_client: DurableClient) -> None:
    instance_id, final = finished_order(durable_client)

    response = funcemu.get(f"/api/orchestrations/{instance_id}")

    assert response.status == 200, response
    body = response.json()
    assert (body["name"], body["instanceId"], body["runtimeStatus"]) == (
        "order_workflow",
        instance_id,
        "Completed",
    )
    assert body["output"] == final["output"]
    events = body["historyEvents"]
    assert events[0]["EventType"] == "ExecutionStarted"
    assert events[0]["FunctionName"] == "order_workflow"
    assert events[-1]["EventType"] == "ExecutionCompleted"
    assert events[-1]["OrchestrationStatus"] == "Completed"
    assert events[-1]["Result"] == final["output"]


def test_history_shows_each_activity_with_its_output(funcemu: Host, durable_client: DurableClient) -> None:
    instance_id, final = finished_order(durable_client)

    events = funcemu.get(f"/api/orchestrations/{instance_id}").json()["historyEvents"]

    completed = [event for event in events if event["EventType"] == "TaskCompleted"]
    assert [event["FunctionName"] for event in completed] == [
        "price_order",
        "reserve_inventory",
        "charge_payment",
        "send_confirmation",
    ]
    assert completed[-1]["Result"] == final["output"]["confirmation"]
    assert all("ScheduledTime" in event and "Timestamp" in event for event in completed)


def test_history_matches_the_management_api(funcemu: Host, durable_client: DurableClient) -> None:
    instance_id, _ = finished_order(durable_client)

    from_app = funcemu.get(f"/api/orchestrations/{instance_id}").json()["historyEvents"]

    assert from_app == durable_client.history(instance_id)


def test_running_orchestration_shows_its_progress(funcemu: Host, durable_client: DurableClient) -> None:
    instance_id = durable_client.start_via(
        "/api/approvals",
        json={"requester": "ada", "approver": "grace", "amount": 1.0, "description": "Coffee"},
    )
    durable_client.wait_for_status(
        instance_id, lambda status: (status.get("customStatus") or {}).get("stage") == "awaitingApproval"
    )

    body = funcemu.get(f"/api/orchestrations/{instance_id}").json()

    assert body["runtimeStatus"] == "Running"
    assert body["customStatus"]["stage"] == "awaitingApproval"
    types = [event["EventType"] for event in body["historyEvents"]]
    assert types[:1] == ["ExecutionStarted"] and "TimerCreated" in types and "ExecutionCompleted" not in types


def test_unknown_instance_is_404(funcemu: Host) -> None:
    response = funcemu.get("/api/orchestrations/not-an-instance")

    assert response.status == 404, response
    assert response.json() == {"error": "no orchestration has the id 'not-an-instance'"}
