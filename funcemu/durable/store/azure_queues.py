"""Queue I/O of a task hub and the control messages this process holds.

A message received from a queue stays invisible to everyone else for the lease (its visibility
timeout); this process remembers its pop receipt, renews the lease while it holds it, and deletes it
when a checkpoint consumes it. A message sent with a visibility delay (a durable timer) is remembered
with the pop receipt of the send, so a clock that runs ahead of real time (time skipping) can make it
visible at once instead of waiting for the queue (docs/azure-storage-taskhub.md §5.4-5.6).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueServiceClient

from funcemu.durable.store import azure_envelope as envelopes
from funcemu.durable.store.azure_blobs import LargeMessages
from funcemu.durable.store.azure_names import HubNames, partition_of
from funcemu.durable.store.base import ActivityItem, Message
from funcemu.durable.store.memory import is_visible

MAX_VISIBILITY = 7 * 24 * 3600 - 60   # the queue service caps visibility timeouts at 7 days
DRAIN_LIMIT = 5000                     # messages read from one queue per poll
PAGE_SIZE = 32                         # the most one Get Messages request returns
_GONE = {"MessageNotFound", "PopReceiptMismatch", "QueueNotFound"}


@dataclass
class Held:
    """A queue message this process knows the pop receipt of."""

    queue: str
    message_id: str
    pop_receipt: str
    order: int                          # send order across queues (see envelopes.order_key)
    lease_until: float = 0.0            # monotonic time; 0 for a delayed message we do not lease
    message: Message | None = None      # control queues
    item: ActivityItem | None = None    # the work-item queue
    blob: str | None = None             # large-message blob to delete with the message
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


@dataclass
class Received:
    raw: QueueMessage
    envelope: dict[str, object]
    blob: str | None


def delay_seconds(visible: datetime | None) -> int:
    """The visibility delay that makes a message appear at `visible` (real time, whole seconds)."""
    if visible is None:
        return 0
    seconds = (visible - datetime.now(timezone.utc)).total_seconds()
    return min(max(0, math.ceil(seconds)), MAX_VISIBILITY)


class HubQueues:
    """The control queues and the work-item queue of one hub."""

    def __init__(self, service: QueueServiceClient, names: HubNames, blobs: LargeMessages,
                 lease_seconds: int) -> None:
        self.names, self.lease = names, lease_seconds
        self._blobs = blobs
        self._clients = {name: service.get_queue_client(name) for name in names.queues}

    def control_queue(self, instance_id: str) -> str:
        return self.names.control_queues[partition_of(instance_id, len(self.names.control_queues))]

    async def create_queues(self) -> None:
        await asyncio.gather(*(ignore(client.create_queue(), ResourceExistsError)
                               for client in self._clients.values()))

    async def delete_queues(self) -> None:
        await asyncio.gather(*(ignore(client.delete_queue(), ResourceNotFoundError)
                               for client in self._clients.values()))

    async def encode(self, envelope: dict[str, object]) -> tuple[str, str | None]:
        """The queue body of `envelope` and its blob, uploading it when it is too large (§2.4)."""
        body = envelopes.dumps(envelope)
        if len(body.encode("utf-8")) <= envelopes.QUEUE_MESSAGE_LIMIT:
            return body, None
        name = envelopes.large_blob_name(envelope)
        await self._blobs.upload(name, body)
        return envelopes.dumps(envelopes.wrapper_envelope(envelope, name)), name

    async def send(self, queue: str, body: str, delay: int) -> QueueMessage:
        sent: QueueMessage = await self._clients[queue].send_message(
            body, visibility_timeout=delay, time_to_live=-1)
        return sent

    async def receive(self, queue: str, limit: int | None) -> list[Received]:
        """Up to `limit` visible messages (all, up to DRAIN_LIMIT, when None), leased for the lease time.
        Reads pages of 32 until one comes back short (the SDK's pager would read until one is empty: a
        second request after nearly every receive)."""
        count = min(limit or DRAIN_LIMIT, DRAIN_LIMIT)
        per_page = min(PAGE_SIZE, count)
        pager = self._clients[queue].receive_messages(
            messages_per_page=per_page, visibility_timeout=self.lease, max_messages=count)
        raws: list[QueueMessage] = []
        try:
            async for page in pager.by_page():
                before = len(raws)
                raws.extend([raw async for raw in page])
                if len(raws) - before < per_page:
                    break
        except ResourceNotFoundError:
            return []
        except Exception:
            if not raws:
                raise
            # a later page failed: keep the pages already leased to us; the next poll meets the error again
        return list(await asyncio.gather(*(self._open(raw) for raw in raws)))

    async def _open(self, raw: QueueMessage) -> Received:
        envelope = envelopes.loads(str(raw.content))
        blob = envelope.get("CompressedBlobName")
        if isinstance(blob, str) and blob:
            envelope = envelopes.loads(await self._blobs.download(blob))
            return Received(raw, envelope, blob)
        return Received(raw, envelope, None)

    async def hide(self, held: Held, seconds: int) -> bool:
        """Set the message's visibility timeout; False when it is gone or someone else received it."""
        async with held.lock:
            try:
                updated = await self._clients[held.queue].update_message(
                    held.message_id, pop_receipt=held.pop_receipt, visibility_timeout=seconds)
            except HttpResponseError as error:
                if _gone(error):
                    return False
                raise
            held.pop_receipt = str(updated.pop_receipt)
            held.lease_until = time.monotonic() + seconds if seconds else 0.0
            return True

    async def delete(self, held: Held) -> None:
        async with held.lock:
            try:
                await self._clients[held.queue].delete_message(held.message_id, held.pop_receipt)
            except HttpResponseError as error:
                if not _gone(error):
                    raise
        if held.blob:
            await self._blobs.delete([held.blob])


class Inbox:
    """Control messages of this process: leased ones, delayed ones we sent, and every known timer."""

    def __init__(self) -> None:
        self.held: dict[str, Held] = {}
        self.delayed: dict[str, Held] = {}
        self.timers: dict[str, datetime] = {}

    def clear(self) -> None:
        self.held.clear()
        self.delayed.clear()
        self.timers.clear()

    def remember(self, held: Held) -> None:
        """File a message as leased (lease_until set) or delayed, and note its timer."""
        target, other = (self.held, self.delayed) if held.lease_until else (self.delayed, self.held)
        other.pop(held.message_id, None)
        target[held.message_id] = held
        if held.message is not None and held.message.visible_time is not None:
            self.timers[held.message_id] = held.message.visible_time

    def find(self, message_id: str) -> Held | None:
        return self.held.get(message_id) or self.delayed.get(message_id)

    def forget(self, message_id: str) -> Held | None:
        self.timers.pop(message_id, None)
        self.delayed.pop(message_id, None)
        return self.held.pop(message_id, None)

    def of_instance(self, instance_id: str) -> list[Held]:
        return [held for held in (*self.held.values(), *self.delayed.values())
                if held.message is not None and held.message.instance_id == instance_id]

    def due(self, now: datetime) -> list[Held]:
        """Delayed messages whose time has come on the store's clock."""
        return [held for held in self.delayed.values()
                if held.message is not None and is_visible(held.message, now)]

    def visible(self, now: datetime, instance_id: str | None = None) -> list[Held]:
        found = [held for held in self.held.values() if held.message is not None
                 and is_visible(held.message, now)
                 and (instance_id is None or held.message.instance_id == instance_id)]
        return sorted(found, key=lambda held: held.order)

    def ready(self, now: datetime, limit: int) -> list[str]:
        """Instances with a visible message, oldest message first."""
        ids: dict[str, None] = {}
        for held in self.visible(now):
            if held.message is not None:
                ids.setdefault(held.message.instance_id)
        return list(ids)[:limit]


def _gone(error: HttpResponseError) -> bool:
    """The message was deleted, or received again by someone (its pop receipt changed)."""
    code = getattr(error, "error_code", None)
    return error.status_code == 404 or str(getattr(code, "value", code)) in _GONE


async def ignore(call: Awaitable[object], *errors: type[BaseException]) -> None:
    """Await `call`, treating `errors` as success (already exists, already gone)."""
    try:
        await call
    except errors:
        pass


def expiring(held: Iterable[Held], within: float) -> list[Held]:
    deadline = time.monotonic() + within
    return [entry for entry in held if 0 < entry.lease_until < deadline]
