"""Activities of the order workflow (function chaining).

They stand in for calls to a pricing service, an inventory system and a payment provider. Their results
depend only on their input, so tests can assert exact values.
"""

import hashlib
import logging

import azure.durable_functions as df

bp = df.Blueprint()

FREE_SHIPPING_FROM = 100.0
SHIPPING_FEE = 5.0
PAYMENT_LIMIT = 10_000.0


@bp.activity_trigger(input_name="order")
def price_order(order: dict) -> dict:
    lines = [{**item, "lineTotal": round(item["quantity"] * item["unitPrice"], 2)} for item in order["items"]]
    subtotal = round(sum(line["lineTotal"] for line in lines), 2)
    shipping = 0.0 if subtotal >= FREE_SHIPPING_FROM else SHIPPING_FEE
    return {
        **order,
        "items": lines,
        "subtotal": subtotal,
        "shipping": shipping,
        "total": round(subtotal + shipping, 2),
    }


@bp.activity_trigger(input_name="order")
def reserve_inventory(order: dict) -> dict:
    units = sum(item["quantity"] for item in order["items"])
    return {"reservationId": reference("RES", order["orderId"]), "units": units}


@bp.activity_trigger(input_name="order")
def charge_payment(order: dict) -> dict:
    if order["total"] > PAYMENT_LIMIT:
        raise ValueError(
            f"payment declined: {order['total']:.2f} exceeds the card limit of {PAYMENT_LIMIT:.2f}"
        )
    return {"paymentId": reference("PAY", order["orderId"]), "amount": order["total"], "currency": "USD"}


@bp.activity_trigger(input_name="reservation")
def release_inventory(reservation: dict) -> dict:
    logging.info("Released reservation %s", reservation["reservationId"])
    return {"released": reservation["reservationId"]}


@bp.activity_trigger(input_name="receipt")
def send_confirmation(receipt: dict) -> str:
    order = receipt["order"]
    return (
        f"Order {order['orderId']} confirmed for {order['customer']}: "
        f"{receipt['reservation']['units']} item(s), {order['total']:.2f} USD "
        f"(payment {receipt['payment']['paymentId']})"
    )


def reference(prefix: str, key: str) -> str:
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:10].upper()}"
