"""Human interaction: POST /api/approvals waits for a decision raced against a timer; timeouts escalate."""

from datetime import datetime, timedelta
from typing import Any

import pytest

from funcemu.testing import Clock, DurableClient, Host

REQUEST = {"requester": "ada", "approver": "grace", "amount": 420.0, "description": "Conference ticket"}


def awaiting_approval(status: dict[str, Any]) -> bool:
    return (status.get("customStatus") or {}).get("stage") == "awaitingApproval"


def start_and_wait_for_approver(durable_client: DurableClient, **extra: Any) -> str:
    instance_id = durable_client.start_via("/api/approvals", json={**REQUEST, **extra})
    durable_client.wait_for_status(instance_id, awaiting_approval)
    return instance_id


def test_approval_through_the_http_endpoint(funcemu: Host, durable_client: DurableClient) -> None:
    instance_id = start_and_wait_for_approver(durable_client)

    response = funcemu.post(
        f"/api/approvals/{instance_id}/approve", {"approver": "grace", "comment": "enjoy"}
    )

    assert response.status == 202, response
    assert response.json() == {"id": instance_id, "approved": True, "decidedBy": "grace", "comment": "enjoy"}
    final = durable_client.wait_for_completion(instance_id)
    assert final["output"] == {
        "requestId": instance_id,
        "status": "approved",
        "amount": 420.0,
        "decidedBy": "grace",
        "comment": "enjoy",
    }
    assert final["customStatus"] == {"stage": "approved", "approver": "grace"}
    types = [event["EventType"] for event in final["historyEvents"]]
    assert "EventRaised" in types and "TimerFired" not in types


def test_rejection_without_a_body(funcemu: Host, durable_client: DurableClient) -> None:
    instance_id = start_and_wait_for_approver(durable_client)

    assert funcemu.post(f"/api/approvals/{instance_id}/reject").status == 202

    output = durable_client.wait_for_output(instance_id)
    assert (output["status"], output["decidedBy"], output["comment"]) == ("rejected", "unknown", "-")


def test_event_raised_through_the_management_api(durable_client: DurableClient) -> None:
    instance_id = start_and_wait_for_approver(durable_client)

    durable_client.raise_event(instance_id, "ApprovalDecision", {"approved": True, "decidedBy": "lin"})

    assert durable_client.wait_for_output(instance_id)["status"] == "approved"


def test_event_raised_before_the_orchestrator_waits_is_kept(durable_client: DurableClient) -> None:
    instance_id = durable_client.start(
        "approval_workflow", REQUEST | {"escalateTo": "cfo", "timeoutSeconds": 60}
    )

    durable_client.raise_event(instance_id, "ApprovalDecision", {"approved": False, "decidedBy": "early"})

    output = durable_client.wait_for_output(instance_id)
    assert (output["status"], output["decidedBy"]) == ("rejected", "early")


def test_no_decision_before_the_timeout_escalates(durable_client: DurableClient) -> None:
    instance_id = durable_client.start_via("/api/approvals", json={**REQUEST, "timeoutSeconds": 0.5})

    final = durable_client.wait_for_completion(instance_id)

    assert final["output"] == {
        "requestId": instance_id,
        "status": "escalated",
        "amount": 420.0,
        "escalatedTo": "finance-managers",
    }
    assert final["customStatus"] == {"stage": "escalated", "approver": "grace"}
    types = [event["EventType"] for event in final["historyEvents"]]
    assert "TimerFired" in types and "EventRaised" not in types


@pytest.mark.emulator_only
def test_default_deadline_is_72_hours(durable_client: DurableClient, clock: Clock) -> None:
    instance_id = start_and_wait_for_approver(durable_client)
    status = durable_client.status(instance_id)
    assert status is not None
    deadline = datetime.fromisoformat(status["customStatus"]["deadline"])
    assert deadline - clock.now() > timedelta(hours=71)

    clock.advance(timedelta(hours=72, seconds=1))

    assert durable_client.wait_for_output(instance_id)["status"] == "escalated"


def test_decision_for_an_unknown_request_is_404(funcemu: Host) -> None:
    response = funcemu.post("/api/approvals/no-such-request/approve")

    assert response.status == 404, response
    assert response.json() == {"error": "no approval request has the id 'no-such-request'"}


def test_unknown_decision_is_400(funcemu: Host, durable_client: DurableClient) -> None:
    instance_id = start_and_wait_for_approver(durable_client)

    response = funcemu.post(f"/api/approvals/{instance_id}/maybe")

    assert response.status == 400, response
    assert response.json() == {"error": "the decision must be 'approve' or 'reject', got 'maybe'"}


def test_decision_after_the_end_is_409(funcemu: Host, durable_client: DurableClient) -> None:
    instance_id = start_and_wait_for_approver(durable_client)
    funcemu.post(f"/api/approvals/{instance_id}/approve")
    durable_client.wait_for_completion(instance_id)

    response = funcemu.post(f"/api/approvals/{instance_id}/reject")

    assert response.status == 409, response
    assert "is Completed and no longer takes decisions" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**REQUEST, "approver": ""}, "approver must be a non-empty string"),
        ({**REQUEST, "amount": -5}, "amount must be a number from 0 to 1000000, got -5"),
        ({**REQUEST, "timeoutSeconds": 0}, "timeoutSeconds must be a number from 0.001 to 2592000, got 0"),
        ({key: value for key, value in REQUEST.items() if key != "description"}, "description must be"),
    ],
)
def test_bad_requests_get_400_with_the_reason(funcemu: Host, body: Any, message: str) -> None:
    response = funcemu.post("/api/approvals", body)

    assert response.status == 400, response
    assert message in response.json()["error"]
