"""Human interaction: an expense approval that waits for a person, with a deadline that escalates.

The orchestrator notifies the approver, then races the `ApprovalDecision` external event against a
durable timer (`timeoutSeconds` from the input, 72 hours by default). A decision arriving first
approves or rejects the request; the timer firing first escalates it.

    POST /api/approvals                            {"requester": "ada", "approver": "grace",
                                                    "amount": 420.0, "description": "Conference"}
    POST /api/approvals/{instanceId}/approve       {"approver": "grace", "comment": "ok"}   (optional body)
    POST /api/approvals/{instanceId}/reject
"""

import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from orchestrators import inputs

bp = df.Blueprint()

DECISION_EVENT = "ApprovalDecision"
DEFAULT_TIMEOUT_SECONDS = 72 * 3600
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600
DECISIONS = {"approve": True, "reject": False}
OPEN_STATES = (df.OrchestrationRuntimeStatus.Pending, df.OrchestrationRuntimeStatus.Running)


@bp.route(route="approvals", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_approval(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        request = read_request(inputs.json_object(req))
    except inputs.InputError as error:
        return inputs.bad_request(error)
    instance_id = await client.start_new("approval_workflow", client_input=request)
    return client.create_check_status_response(req, instance_id)


def read_request(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "requester": inputs.text(body, "requester", max_length=100),
        "approver": inputs.text(body, "approver", max_length=100),
        "amount": inputs.number(body, "amount", low=0, high=1_000_000),
        "description": inputs.text(body, "description", max_length=500),
        "escalateTo": inputs.text(body, "escalateTo", max_length=100, default="finance-managers"),
        "timeoutSeconds": inputs.number(
            body, "timeoutSeconds", low=0.001, high=MAX_TIMEOUT_SECONDS, default=DEFAULT_TIMEOUT_SECONDS
        ),
    }


@bp.route(route="approvals/{instanceId}/{decision}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def decide_approval(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = req.route_params["instanceId"]
    try:
        decision = read_decision(req)
    except inputs.InputError as error:
        return inputs.bad_request(error)
    status = await client.get_status(instance_id)
    if not status or status.name != "approval_workflow":
        return inputs.error_response(404, f"no approval request has the id {instance_id!r}")
    if status.runtime_status not in OPEN_STATES:
        state = status.runtime_status.name if status.runtime_status else "unknown"
        return inputs.error_response(
            409, f"approval request {instance_id!r} is {state} and no longer takes decisions"
        )
    await client.raise_event(instance_id, DECISION_EVENT, decision)
    return inputs.json_response({"id": instance_id, **decision}, status_code=202)


def read_decision(req: func.HttpRequest) -> dict[str, Any]:
    verb = req.route_params.get("decision", "")
    if verb not in DECISIONS:
        raise inputs.InputError(f"the decision must be 'approve' or 'reject', got {verb!r}")
    body = inputs.optional_json_object(req)
    return {
        "approved": DECISIONS[verb],
        "decidedBy": inputs.text(body, "approver", max_length=100, default="unknown"),
        "comment": inputs.text(body, "comment", max_length=500, default="-"),
    }


def decision_of(payload: Any) -> dict[str, Any]:
    """The event data as a dict, however it was raised.

    The Python client's `raise_event` encodes the data twice, so the orchestrator receives JSON text
    (azure-functions-durable-python issue #295); the management API with a raw JSON body delivers the
    value itself. A bare boolean is accepted too.
    """
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            payload = {}
    if isinstance(payload, bool):
        payload = {"approved": payload}
    if not isinstance(payload, dict):
        payload = {}
    return {
        "approved": payload.get("approved") is True,
        "decidedBy": payload.get("decidedBy", "unknown"),
        "comment": payload.get("comment", "-"),
    }


@bp.orchestration_trigger(context_name="context")
def approval_workflow(context: df.DurableOrchestrationContext):
    request = {**context.get_input(), "requestId": context.instance_id}
    yield context.call_activity("send_approval_request", request)
    deadline = context.current_utc_datetime + timedelta(seconds=request["timeoutSeconds"])
    context.set_custom_status(
        {"stage": "awaitingApproval", "approver": request["approver"], "deadline": deadline.isoformat()}
    )
    decision_task = context.wait_for_external_event(DECISION_EVENT)
    timeout_task = context.create_timer(deadline)
    winner = yield context.task_any([decision_task, timeout_task])
    if winner == decision_task:
        timeout_task.cancel()
        decision = decision_of(decision_task.result)
        outcome = yield context.call_activity("record_decision", {"request": request, **decision})
    else:
        outcome = yield context.call_activity("escalate_approval", request)
    context.set_custom_status({"stage": outcome["status"], "approver": request["approver"]})
    return outcome
