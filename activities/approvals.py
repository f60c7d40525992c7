"""Activities of the approval workflow (human interaction).

They stand in for an e-mail to the approver, the expense system and the escalation queue.
"""

import logging

import azure.durable_functions as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def send_approval_request(request: dict) -> dict:
    logging.info(
        "Asked %s to approve %.2f for %s (request %s)",
        request["approver"],
        request["amount"],
        request["requester"],
        request["requestId"],
    )
    return {"notified": request["approver"], "channel": "email"}


@bp.activity_trigger(input_name="decision")
def record_decision(decision: dict) -> dict:
    request = decision["request"]
    return {
        "requestId": request["requestId"],
        "status": "approved" if decision["approved"] else "rejected",
        "amount": request["amount"],
        "decidedBy": decision["decidedBy"],
        "comment": decision["comment"],
    }


@bp.activity_trigger(input_name="request")
def escalate_approval(request: dict) -> dict:
    logging.warning(
        "No decision from %s in time: request %s escalated to %s",
        request["approver"],
        request["requestId"],
        request["escalateTo"],
    )
    return {
        "requestId": request["requestId"],
        "status": "escalated",
        "amount": request["amount"],
        "escalatedTo": request["escalateTo"],
    }
