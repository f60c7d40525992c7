"""The queue trigger (§5.2, §3.10): a QueueListener whose handler invokes the function.

The worker receives the body as a string datum (bytes if it is not UTF-8) with trigger metadata
`QueueTrigger`, `DequeueCount`, `Id`, `InsertionTime`, `ExpirationTime`, `NextVisibleTime`,
`PopReceipt`; binding expressions also see the body's JSON properties when it is a JSON object.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from typing import Any

from azure.functions import meta
from azure.storage.queue import QueueMessage

from funcemu.app import FunctionSpec
from funcemu.errors import FuncemuError
from funcemu.invoke import HOST_API_REASON
from funcemu.triggers.convert import decode_input, metadata_datums, payload_datum
from funcemu.triggers.polling import QueueListener, QueueOptions, Received, poison_name
from funcemu.triggers.storage import StorageAccount, Watchers

log = logging.getLogger("funcemu.triggers.queue")
QUEUE_NAME_RULE = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
MAX_TIME = "9999-12-31T23:59:59.9999999+00:00"


class QueueNameError(FuncemuError):
    def __init__(self, function: str, binding: str, name: str) -> None:
        super().__init__(f"Function '{function}' (binding '{binding}'): queue name '{name}' is invalid: it must "
                         "be 3-63 lower-case letters, digits and single hyphens, starting and ending with a "
                         "letter or digit.")


def queue_name(function: str, binding: dict[str, Any], rendered: str | None = None) -> str:
    """The queue name in lower case (as the host normalizes it), validated."""
    name = (rendered if rendered is not None else str(binding.get("queueName") or "")).lower()
    if not QUEUE_NAME_RULE.match(name):
        raise QueueNameError(function, str(binding.get("name")), name)
    return name


def trigger_data(body: bytes, system: dict[str, Any]) -> tuple[meta.Datum, dict[str, meta.Datum], dict[str, Any]]:
    """(payload datum, trigger metadata for the worker, binding data for expressions)."""
    datum = payload_datum(body)
    text = datum.value if datum.type == "string" else None
    trigger_metadata = metadata_datums({key: value for key, value in system.items() if value is not None})
    data: dict[str, Any] = {}
    if text is not None:
        trigger_metadata["QueueTrigger"] = meta.Datum(text, "string")
        data.update(_json_properties(text))
    data.update(system)
    if text is not None:
        data["QueueTrigger"] = text
    return datum, trigger_metadata, data


def _json_properties(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class QueueTrigger:
    """One queue-triggered function: its listener and its admin invocation."""

    def __init__(self, host: Any, spec: FunctionSpec, account: StorageAccount, name: str,
                 options: QueueOptions, watchers: Watchers) -> None:
        self.host, self.spec, self.account, self.name = host, spec, account, name
        poison = poison_name(name)
        self.listener = QueueListener(
            name, account.queue(name), options, self.handle,
            (lambda: account.ensure_queue(poison)) if poison else None,
            watchers.subscribe(account.key("queue", name)))

    async def handle(self, received: Received) -> bool:
        system = queue_metadata(received.message)
        return await self._invoke(received.body, system, f"New queue message detected on '{self.name}'.")

    async def _invoke(self, body: bytes, system: dict[str, Any], reason: str) -> bool:
        datum, trigger_metadata, data = trigger_data(body, system)
        try:
            value = decode_input(self.spec, self.spec.trigger, datum, trigger_metadata)
            result = await self.host.call(self.spec, self.spec.trigger["name"], value, data, reason=reason)
        except Exception as exc:  # an input binding or conversion failed: the attempt counts as failed
            log.error("Function '%s' could not be invoked: %s: %s", self.spec.name, type(exc).__name__, exc)
            return False
        return bool(result.ok)

    async def invoke_by_admin(self, raw_input: str | None) -> None:
        """A message built from the input: no id or pop receipt, dequeue count 0, inserted now."""
        now = datetime.now(timezone.utc).isoformat()
        system = {"DequeueCount": 0, "Id": None, "PopReceipt": None, "InsertionTime": now,
                  "ExpirationTime": MAX_TIME, "NextVisibleTime": MAX_TIME}
        await self._invoke((raw_input or "").encode("utf-8"), system, HOST_API_REASON)


def queue_metadata(message: QueueMessage) -> dict[str, Any]:
    """The message's system properties as binding data (QueueTrigger aside)."""
    return {"DequeueCount": message.dequeue_count, "Id": message.id, "PopReceipt": message.pop_receipt,
            "InsertionTime": _iso(message.inserted_on), "ExpirationTime": _iso(message.expires_on),
            "NextVisibleTime": _iso(message.next_visible_on)}


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None
