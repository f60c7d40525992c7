"""Orders from a storage queue: each message on `orders-inbox` starts the chaining workflow.

A message is the same JSON order that `POST /api/orders` takes. The orchestration's id is
`inbox-<message id>`, so a message that the queue delivers twice (it promises at least once) still
starts one orchestration. A message that is not a valid order fails the invocation; the host tries it
again, and after `maxDequeueCount` attempts (5 by default) moves it unchanged to `orders-inbox-poison`.

This needs Azure Storage (`AzureWebJobsStorage`; Azurite locally). Without it the listener cannot start,
and the host logs that and runs everything else as usual; the orchestration itself never touches storage.
"""

import json
import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from orchestrators import chaining, inputs

bp = df.Blueprint()

QUEUE = "orders-inbox"


class BadMessage(ValueError):
    """A queue message that is not an order; raising it fails the invocation, so the host retries it."""


@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection="AzureWebJobsStorage")
@bp.durable_client_input(client_name="client")
async def start_order_from_inbox(message: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    order = read_message(message)
    instance_id = f"inbox-{message.id}"
    existing = await client.get_status(instance_id)
    if existing:
        logging.info(
            "Message %s was delivered again; orchestration %s already exists", message.id, instance_id
        )
        return
    await client.start_new("order_workflow", instance_id=instance_id, client_input=order)
    logging.info("Started order %s from %s as orchestration %s", order["orderId"], QUEUE, instance_id)


def read_message(message: func.QueueMessage) -> dict[str, Any]:
    try:
        body = json.loads(message.get_body())
    except ValueError:  # includes bodies that are not UTF-8
        raise BadMessage(f"message {message.id} is not JSON") from None
    if not isinstance(body, dict):
        raise BadMessage(f"message {message.id} must be a JSON object (an order)")
    try:
        return chaining.read_order(body)
    except inputs.InputError as error:
        raise BadMessage(f"message {message.id} is not a valid order: {error}") from None
