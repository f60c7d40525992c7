"""The durable_client helpers themselves, driven through the reference app."""

from datetime import timedelta

import pytest

from funcemu.testing import (
    Clock,
    DurableApiError,
    DurableClient,
    Host,
    OrchestrationFailed,
    OrchestrationTimeout,
)

REQUEST = {"requester": "ada", "approver": "grace", "amount": 1.0, "description": "Coffee"}


def test_timeout_names_the_instance_its_status_and_history(durable_client: DurableClient) -> None:
    instance_id = durable_client.start_via("/api/approvals", json=REQUEST)

    with pytest.raises(OrchestrationTimeout) as caught:
        durable_client.wait_for_status(instance_id, "Completed", timeout=0.5)

    message = str(caught.value)
    assert instance_id in message
    assert '"runtimeStatus"' in message and "history:" in message and "ExecutionStarted" in message


def test_terminate_ends_a_waiting_instance(durable_client: DurableClient) -> None:
    instance_id = durable_client.start_via("/api/approvals", json=REQUEST)

    durable_client.terminate(instance_id, "no longer needed")

    final = durable_client.wait_for_completion(instance_id)
    assert (final["runtimeStatus"], final["output"]) == ("Terminated", "no longer needed")
    with pytest.raises(OrchestrationFailed, match="ended Terminated"):
        durable_client.wait_for_output(instance_id)


def test_start_through_the_management_api_with_an_id(durable_client: DurableClient) -> None:
    documents = [{"name": "a", "text": "one two two"}]

    instance_id = durable_client.start("word_count_workflow", {"documents": documents, "top": 1}, "count-1")

    assert instance_id == "count-1"
    assert durable_client.wait_for_output(instance_id)["topWords"] == [{"word": "two", "count": 2}]


def test_status_of_an_unknown_instance_is_none(durable_client: DurableClient) -> None:
    assert durable_client.status("nobody-started-this") is None


def test_unknown_orchestrator_is_refused(durable_client: DurableClient) -> None:
    with pytest.raises(DurableApiError, match="HTTP 400"):
        durable_client.start("no_such_orchestrator")


def test_start_via_checks_the_status_code(durable_client: DurableClient) -> None:
    with pytest.raises(DurableApiError, match="expected 202"):
        durable_client.start_via("/api/approvals", json={})


@pytest.mark.emulator_only
def test_each_test_starts_with_no_instances(funcemu: Host, durable_client: DurableClient) -> None:
    assert durable_client.instances() == []


@pytest.mark.emulator_only
def test_waiting_for_a_result_skips_durable_timers(durable_client: DurableClient, clock: Clock) -> None:
    instance_id = durable_client.start_via("/api/approvals", json=REQUEST)  # a 72-hour deadline
    before = clock.now()

    output = durable_client.wait_for_output(instance_id, timeout=5)

    assert output["status"] == "escalated"
    assert clock.now() - before >= timedelta(hours=72)


@pytest.mark.emulator_only
def test_time_does_not_skip_while_waiting_for_a_state(durable_client: DurableClient, clock: Clock) -> None:
    instance_id = durable_client.start_via("/api/approvals", json=REQUEST)
    before = clock.now()

    durable_client.wait_for_status(instance_id, lambda status: bool(status.get("customStatus")))

    assert clock.now() - before < timedelta(hours=1)
    assert durable_client.status(instance_id)["runtimeStatus"] == "Running"  # type: ignore[index]
