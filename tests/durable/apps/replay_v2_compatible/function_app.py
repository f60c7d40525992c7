"""Version 2 of ../replay_v1, changed compatibly: helpers, renamed variables, a custom status, logging
outside replay and a richer output, but the same work in the same order."""

import logging
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.activity_trigger(input_name="item")
def reserve(item: str) -> str:
    return f"reservation-{item}"


@app.activity_trigger(input_name="line")
def price(line: dict) -> float:
    return line["quantity"] * line["unitPrice"]


@app.activity_trigger(input_name="order")
def charge(order: dict) -> str:
    return f"receipt-{order['item']}-{order['total']:.2f}"


def priced(context: df.DurableOrchestrationContext, lines: list):
    amounts = yield context.task_all([context.call_activity("price", line) for line in lines])
    return round(sum(amounts), 2)


@app.orchestration_trigger(context_name="context")
def order_flow(context: df.DurableOrchestrationContext):
    order = context.get_input()
    held = yield context.call_activity("reserve", order["item"])
    total = yield from priced(context, order["lines"])
    context.set_custom_status({"stage": "awaiting approval", "total": total})
    if not context.is_replaying:
        logging.info("order %s waits for approval", order["item"])
    decision = context.wait_for_external_event("Approve")
    hold = context.create_timer(context.current_utc_datetime + timedelta(hours=order.get("holdHours", 24)))
    first = yield context.task_any([decision, hold])
    receipt = None
    if first == decision:
        hold.cancel()
        receipt = yield context.call_activity("charge", {"item": order["item"], "total": total})
    return {"reservation": held, "total": total, "receipt": receipt, "version": 2}
