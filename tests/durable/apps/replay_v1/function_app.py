"""Version 1 of an order orchestrator, whose histories tests/durable/test_replayer.py records and replays
against version 2 (../replay_v2_compatible, ../replay_v2_incompatible)."""

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


@app.orchestration_trigger(context_name="context")
def order_flow(context: df.DurableOrchestrationContext):
    order = context.get_input()
    reservation = yield context.call_activity("reserve", order["item"])
    prices = yield context.task_all([context.call_activity("price", line) for line in order["lines"]])
    total = sum(prices)
    approval = context.wait_for_external_event("Approve")
    expiry = context.create_timer(context.current_utc_datetime + timedelta(hours=order.get("holdHours", 24)))
    winner = yield context.task_any([approval, expiry])
    if winner != approval:
        return {"reservation": reservation, "total": total, "receipt": None}
    expiry.cancel()
    receipt = yield context.call_activity("charge", {"item": order["item"], "total": total})
    return {"reservation": reservation, "total": total, "receipt": receipt}
