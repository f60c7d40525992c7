"""Async HTTP API: POST /api/exports answers 202 at once; statusQueryGetUri shows progress, then results."""

import time
from typing import Any

import pytest

from funcemu.testing import DurableClient, Host

CHECK_STATUS_KEYS = {
    "id",
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "purgeHistoryDeleteUri",
    "restartPostUri",
    "suspendPostUri",
    "resumePostUri",
}


def poll_until_done(funcemu: Host, url: str, timeout: float) -> tuple[list[Any], Any]:
    """Poll like an HTTP client would: collect each customStatus seen until the answer is 200."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = funcemu.http.get(url)
        body = response.json()
        if response.status == 200:
            return seen, body
        assert response.status == 202, response
        assert response.header("Location"), "a running instance answers 202 with a Location header"
        if body["customStatus"] and body["customStatus"] not in seen:
            seen.append(body["customStatus"])
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s; progress seen: {seen}")


def test_starter_answers_202_with_the_management_urls(funcemu: Host, durable_client: DurableClient) -> None:
    response = funcemu.post("/api/exports", {"dataset": "customers", "records": 10})

    assert response.status == 202, response
    payload = response.json()
    assert CHECK_STATUS_KEYS <= set(payload)
    assert response.header("Location") == payload["statusQueryGetUri"]
    assert payload["id"] in payload["statusQueryGetUri"]
    durable_client.wait_for_completion(payload["id"])


def test_progress_is_reported_until_the_export_completes(
    funcemu: Host, durable_client: DurableClient
) -> None:
    job = {"dataset": "customers", "records": 1200, "batchSize": 500, "throttleSeconds": 0.4}
    payload = funcemu.post("/api/exports", job).json()

    seen, final = poll_until_done(funcemu, payload["statusQueryGetUri"], durable_client.timeout)

    assert final["runtimeStatus"] == "Completed"
    percents = [status["percentComplete"] for status in seen]
    assert percents == sorted(percents), f"progress went backwards: {seen}"
    assert any(0 < percent < 100 for percent in percents), f"no progress seen between 0 and 100: {seen}"
    assert all(status["stage"] == "exporting" and status["totalBatches"] == 3 for status in seen)
    assert final["customStatus"] == {
        "stage": "completed",
        "completedBatches": 3,
        "totalBatches": 3,
        "exportedRecords": 1200,
        "totalRecords": 1200,
        "percentComplete": 100,
    }


def test_export_result_names_the_file(durable_client: DurableClient) -> None:
    instance_id = durable_client.start_via(
        "/api/exports", json={"dataset": "orders", "records": 10, "batchSize": 3}
    )

    final = durable_client.wait_for_completion(instance_id)

    assert final["output"] == {
        "dataset": "orders",
        "exportedRecords": 10,
        "batches": 4,
        "location": f"exports/orders/{instance_id}.csv",
    }
    batches = [
        event["Result"] for event in final["historyEvents"] if event.get("FunctionName") == "export_batch"
    ]
    assert [(batch["batch"], batch["rows"]) for batch in batches] == [(0, 3), (1, 3), (2, 3), (3, 1)]


def test_throttle_waits_on_durable_timers_between_batches(durable_client: DurableClient) -> None:
    job = {"dataset": "orders", "records": 3, "batchSize": 1, "throttleSeconds": 0.1}
    instance_id = durable_client.start_via("/api/exports", json=job)

    history = durable_client.wait_for_completion(instance_id)["historyEvents"]

    types = [event["EventType"] for event in history]
    assert types.count("TimerCreated") == 2 and types.count("TimerFired") == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"records": 10}, "dataset must be a non-empty string"),
        ({"dataset": "no spaces", "records": 10}, "dataset must match"),
        ({"dataset": "d", "records": 0}, "records must be an integer from 1 to 10000000, got 0"),
        ({"dataset": "d", "records": 5000, "batchSize": 1}, "gives 5000 batches; the limit is 1000"),
        (
            {"dataset": "d", "records": 5, "throttleSeconds": -1},
            "throttleSeconds must be a number from 0 to 3600",
        ),
    ],
)
def test_bad_jobs_get_400_with_the_reason(funcemu: Host, body: Any, message: str) -> None:
    response = funcemu.post("/api/exports", body)

    assert response.status == 400, response
    assert message in response.json()["error"]
