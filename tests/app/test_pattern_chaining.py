"""Function chaining: POST /api/orders runs price -> reserve -> charge -> confirm, or compensates."""

from typing import Any

import pytest

from funcemu.testing import DurableClient, Host

ORDER = {
    "orderId": "A-1001",
    "customer": "ada@example.com",
    "items": [
        {"sku": "BOOK-1", "quantity": 2, "unitPrice": 12.5},
        {"sku": "PEN-7", "quantity": 3, "unitPrice": 1.2},
    ],
}


def completed_activities(history: list[dict[str, Any]]) -> list[str]:
    return [event["FunctionName"] for event in history if event["EventType"] == "TaskCompleted"]


def test_order_runs_every_step_in_order(durable_client: DurableClient) -> None:
    instance_id = durable_client.start_via("/api/orders", json=ORDER)

    final = durable_client.wait_for_completion(instance_id)

    assert final["runtimeStatus"] == "Completed", final
    output = final["output"]
    assert output["status"] == "confirmed"
    assert output["total"] == 33.6  # 2 x 12.50 + 3 x 1.20 = 28.60, plus 5.00 shipping under 100
    assert output["reservationId"].startswith("RES-") and output["paymentId"].startswith("PAY-")
    assert output["confirmation"] == (
        f"Order A-1001 confirmed for ada@example.com: 5 item(s), 33.60 USD (payment {output['paymentId']})"
    )
    assert completed_activities(final["historyEvents"]) == [
        "price_order",
        "reserve_inventory",
        "charge_payment",
        "send_confirmation",
    ]


def test_each_step_receives_the_previous_output(durable_client: DurableClient) -> None:
    instance_id = durable_client.start_via("/api/orders", json={**ORDER, "orderId": "A-1002"})

    history = durable_client.wait_for_completion(instance_id)["historyEvents"]

    results = {
        event["FunctionName"]: event["Result"] for event in history if event["EventType"] == "TaskCompleted"
    }
    priced = results["price_order"]
    assert [line["lineTotal"] for line in priced["items"]] == [25.0, 3.6]
    assert (priced["subtotal"], priced["shipping"]) == (28.6, 5.0)
    assert results["reserve_inventory"]["units"] == 5
    assert results["charge_payment"]["amount"] == 33.6


def test_same_order_id_gives_the_same_references(durable_client: DurableClient) -> None:
    first = durable_client.wait_for_output(durable_client.start_via("/api/orders", json=ORDER))
    second = durable_client.wait_for_output(durable_client.start_via("/api/orders", json=ORDER))

    assert (first["reservationId"], first["paymentId"]) == (second["reservationId"], second["paymentId"])


def test_declined_payment_releases_the_reservation(durable_client: DurableClient) -> None:
    expensive = {**ORDER, "orderId": "A-9", "items": [{"sku": "CAR-1", "quantity": 1, "unitPrice": 25_000}]}
    instance_id = durable_client.start_via("/api/orders", json=expensive)

    final = durable_client.wait_for_completion(instance_id)

    assert final["runtimeStatus"] == "Completed", final
    assert final["output"]["status"] == "cancelled"
    assert "payment declined" in final["output"]["reason"]
    history = final["historyEvents"]
    assert [event["FunctionName"] for event in history if event["EventType"] == "TaskFailed"] == [
        "charge_payment"
    ]
    assert completed_activities(history) == ["price_order", "reserve_inventory", "release_inventory"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**ORDER, "orderId": ""}, "orderId must be a non-empty string"),
        ({**ORDER, "customer": 7}, "customer must be a non-empty string"),
        ({**ORDER, "items": []}, "items must be a list of 1 to 100 objects, got []"),
        ({**ORDER, "items": ["BOOK-1"]}, 'items[0] must be an object, got "BOOK-1"'),
        (
            {**ORDER, "items": [{"sku": "B", "quantity": 0, "unitPrice": 1}]},
            "items[0].quantity must be an integer from 1 to 1000, got 0",
        ),
        (
            {**ORDER, "items": [{"sku": "B", "quantity": True, "unitPrice": 1}]},
            "items[0].quantity must be an integer from 1 to 1000, got true",
        ),
        (
            {**ORDER, "items": [{"sku": "B", "quantity": 1, "unitPrice": "free"}]},
            'items[0].unitPrice must be a number from 0 to 100000, got "free"',
        ),
        ([ORDER], "the request body must be a JSON object, got a list"),
    ],
)
def test_bad_orders_get_400_with_the_reason(funcemu: Host, body: Any, message: str) -> None:
    response = funcemu.post("/api/orders", body)

    assert response.status == 400, response
    assert message in response.json()["error"]


def test_a_body_that_is_not_json_gets_400(funcemu: Host) -> None:
    response = funcemu.http.post("/api/orders", data="orderId=A-1", headers={"Content-Type": "text/plain"})

    assert response.status == 400, response
    assert response.json() == {"error": "the request body must be a JSON object"}


@pytest.mark.emulator_only  # other hosts may hold instances of other runs
def test_a_bad_order_starts_nothing(funcemu: Host, durable_client: DurableClient) -> None:
    funcemu.post("/api/orders", {**ORDER, "items": []})

    assert durable_client.instances() == []
