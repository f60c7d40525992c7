"""Function chaining: an order goes through pricing, inventory, payment and confirmation, in order.

Each step's output feeds the next one. When the payment is declined, the orchestrator compensates by
releasing the inventory it reserved and ends with status "cancelled" instead of failing.

    POST /api/orders  {"orderId": "A-1", "customer": "ada@example.com",
                       "items": [{"sku": "BOOK-1", "quantity": 2, "unitPrice": 12.5}]}
"""

import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from orchestrators import inputs

bp = df.Blueprint()

MAX_ITEMS = 100


@bp.route(route="orders", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_order(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        order = read_order(inputs.json_object(req))
    except inputs.InputError as error:
        return inputs.bad_request(error)
    instance_id = await client.start_new("order_workflow", client_input=order)
    logging.info("Started order %s as orchestration %s", order["orderId"], instance_id)
    return client.create_check_status_response(req, instance_id)


def read_order(body: dict[str, Any]) -> dict[str, Any]:
    items = inputs.objects(body, "items", max_items=MAX_ITEMS)
    return {
        "orderId": inputs.text(body, "orderId", max_length=64),
        "customer": inputs.text(body, "customer", max_length=254),
        "items": [read_item(item, f"items[{index}].") for index, item in enumerate(items)],
    }


def read_item(item: dict[str, Any], where: str) -> dict[str, Any]:
    return {
        "sku": inputs.text(item, "sku", where=where, max_length=64),
        "quantity": inputs.integer(item, "quantity", where=where, low=1, high=1000),
        "unitPrice": inputs.number(item, "unitPrice", where=where, low=0, high=100_000),
    }


@bp.orchestration_trigger(context_name="context")
def order_workflow(context: df.DurableOrchestrationContext):
    order = context.get_input()
    priced = yield context.call_activity("price_order", order)
    reservation = yield context.call_activity("reserve_inventory", priced)
    try:
        payment = yield context.call_activity("charge_payment", priced)
    except Exception as error:  # an activity failure arrives as a plain Exception with its reason
        yield context.call_activity("release_inventory", reservation)
        return {
            "orderId": order["orderId"],
            "status": "cancelled",
            "reason": str(error),
            "total": priced["total"],
        }
    confirmation = yield context.call_activity(
        "send_confirmation", {"order": priced, "reservation": reservation, "payment": payment}
    )
    return {
        "orderId": order["orderId"],
        "status": "confirmed",
        "total": priced["total"],
        "reservationId": reservation["reservationId"],
        "paymentId": payment["paymentId"],
        "confirmation": confirmation,
    }
