"""The messages one `AzureStore` process sends, holds and deletes, on top of `HubQueues`.

Sends keep their order within a queue (one at a time per queue, queues in parallel), so the order key
of a message follows the caller's send order. Received control messages wait in the `Inbox` until a
checkpoint consumes them; leases are renewed in the background while they are held. A process that
dispatches orchestrations keeps what it sends itself: a control message or work item is sent with the
lease as its visibility timeout and filed as if received (no receive request), up to HOLD_LIMIT held
messages and PREFETCH_LIMIT waiting work items; past those, sends are visible to every process.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from funcemu.durable.store import azure_envelope as envelopes
from funcemu.durable.store.azure_outage import describe
from funcemu.durable.store.azure_queues import Held, HubQueues, Inbox, Received, delay_seconds, expiring
from funcemu.durable.store.base import Message
from funcemu.durable.store.memory import fired_timer_id

log = logging.getLogger("funcemu.durable")
_CONCURRENCY = 32
MINE_LIMIT = 20_000     # ids of messages this process sent that it remembers
PREFETCH_LIMIT = 32     # work items this process sends leased to itself, waiting for its activity loop
HOLD_LIMIT = 64         # control messages held (leased, not yet consumed) below which own sends are kept


@dataclass
class Outgoing:
    queue: str
    envelope: dict[str, Any]
    body: str = ""
    blob: str | None = None
    sent: bool = False      # a send that is retried after an outage skips what already went out

    def timer_of(self, instance_id: str) -> int | None:
        task = self.envelope.get("TaskMessage") or {}
        if (task.get("OrchestrationInstance") or {}).get("InstanceId") != instance_id:
            return None
        return fired_timer_id(task.get("Event") or {})


class Messaging:
    def __init__(self, queues: HubQueues) -> None:
        self.queues = queues
        self.inbox = Inbox()
        self.leased: dict[str, Held] = {}       # work items, by message id
        self.watermark: datetime | None = None  # `now` of the latest ready_instances
        self.dirty: set[str] = set()            # control queues sent to since their last poll
        self._polled: dict[str, float] = {}     # control queue -> monotonic time of its last poll
        self.items_dirty = True                 # the work-item queue may hold items we have not seen
        self.items_polled = float("-inf")       # monotonic time of its last receive
        self.foreign_seen = float("-inf")       # monotonic time a message this process did not send came
        self._mine: OrderedDict[str, None] = OrderedDict()
        # Work items this process sent invisible, leased to itself as a receive would have leased them,
        # for its own activity loop: no receive needed. Only once this process fetches work items at all.
        self.prefetched: OrderedDict[str, Held] = OrderedDict()
        self.prefetching = False
        self._prefetch_slots = 0                # sends under way that will go to `prefetched`
        # Likewise control messages this process sends, while it holds few: they go to the queue invisible
        # and into the inbox as if received. Only once this process dispatches orchestrations.
        self.holding = False
        self._hold_slots = 0
        self._limit = asyncio.Semaphore(_CONCURRENCY)
        self._renewing = asyncio.Semaphore(_CONCURRENCY)   # not behind a fan-in's thousand deletes

    def clear(self) -> None:
        self.inbox.clear()
        self.leased.clear()
        self.watermark = None
        self.dirty.clear()
        self._polled.clear()
        self.items_dirty, self.items_polled = True, float("-inf")
        self._mine.clear()
        self.prefetched.clear()

    def lease_end(self) -> float:
        return time.monotonic() + self.queues.lease

    # sending

    async def encode(self, outgoing: list[Outgoing]) -> None:
        async def encode(entry: Outgoing) -> None:
            async with self._limit:
                entry.body, entry.blob = await self.queues.encode(entry.envelope)
        await asyncio.gather(*(encode(entry) for entry in outgoing if not entry.body))

    async def send(self, outgoing: list[Outgoing]) -> None:
        await self.encode(outgoing)
        by_queue: dict[str, list[Outgoing]] = {}
        for entry in outgoing:
            by_queue.setdefault(entry.queue, []).append(entry)
        await asyncio.gather(*(self._send_in_order(entries) for entries in by_queue.values()))

    async def _send_in_order(self, entries: list[Outgoing]) -> None:
        for entry in entries:
            if entry.sent:
                continue
            if entry.queue == self.queues.names.workitems_queue:
                await self._send_item(entry)
                continue
            visible = envelopes.visible_time(entry.envelope)
            delay = delay_seconds(visible)
            keep = not delay and self.holding and len(self.inbox.held) + self._hold_slots < HOLD_LIMIT
            self._hold_slots += keep
            try:
                sent = await self.queues.send(entry.queue, entry.body, self.queues.lease if keep else delay)
            finally:
                self._hold_slots -= keep
            entry.sent = True
            self._note_mine(str(sent.id))
            held = Held(entry.queue, str(sent.id), str(sent.pop_receipt),
                        envelopes.order_key(entry.envelope, sent.inserted_on),
                        self.lease_end() if keep else 0.0,
                        message=envelopes.to_message(entry.envelope, str(sent.id)), blob=entry.blob)
            if keep:
                self.inbox.remember(held)    # leased to us by the send itself: no receive needed
                continue
            self.dirty.add(entry.queue)
            if delay:
                self.inbox.remember(held)    # delayed: kept so a clock ahead of real time can fetch it
            elif visible is not None:
                self.inbox.timers[held.message_id] = visible

    async def _send_item(self, entry: Outgoing) -> None:
        """Send a work item; while few wait in `prefetched`, invisible and kept there."""
        keep = self.prefetching and len(self.prefetched) + self._prefetch_slots < PREFETCH_LIMIT
        self._prefetch_slots += keep
        try:
            sent = await self.queues.send(entry.queue, entry.body, self.queues.lease if keep else 0)
        finally:
            self._prefetch_slots -= keep
        entry.sent = True
        self._note_mine(str(sent.id))
        if not keep:
            self.items_dirty = True
            return
        item = envelopes.to_activity(entry.envelope, str(sent.id), 1)
        self.prefetched[str(sent.id)] = Held(entry.queue, str(sent.id), str(sent.pop_receipt),
                                             envelopes.order_key(entry.envelope, sent.inserted_on),
                                             self.lease_end(), item=item, blob=entry.blob)

    def _note_mine(self, message_id: str) -> None:
        self._mine[message_id] = None
        if len(self._mine) > MINE_LIMIT:
            self._mine.popitem(last=False)

    def take_prefetched(self, limit: int) -> tuple[list[Held], list[Held]]:
        """Up to `limit` prefetched items, oldest first, and those whose lease ran half out meanwhile
        (to be given back to the queue: their lease is not renewed while they wait here)."""
        taken: list[Held] = []
        late: list[Held] = []
        deadline = time.monotonic() + self.queues.lease / 2
        while self.prefetched and len(taken) < limit:
            _, held = self.prefetched.popitem(last=False)
            (taken if held.lease_until > deadline else late).append(held)
        return taken, late

    # receiving

    def stale_queues(self, every: float) -> list[str]:
        """Control queues to poll: those this process sent to, and any not polled for `every` seconds
        (messages of other processes), so a busy engine does not re-read idle queues on every wake."""
        oldest = time.monotonic() - every
        return [queue for queue in self.queues.names.control_queues
                if queue in self.dirty or self._polled.get(queue, float("-inf")) <= oldest]

    async def poll(self, queues: list[str]) -> None:
        """Receive what `queues` hold. When some receives fail, the messages of the others are still
        accepted (they are leased to us now), the failed queues count as not polled, and the first
        error is raised."""
        started = time.monotonic()
        self.dirty.difference_update(queues)
        self._polled.update((queue, started) for queue in queues)
        results = await asyncio.gather(*(self.queues.receive(queue, None) for queue in queues),
                                       return_exceptions=True)
        failed = [(queue, result) for queue, result in zip(queues, results, strict=True)
                  if isinstance(result, BaseException)]
        await asyncio.gather(*(self._accept(queue, received) for queue, batch in zip(queues, results, strict=True)
                               if not isinstance(batch, BaseException) for received in batch))
        for queue, _ in failed:
            self._polled.pop(queue, None)
        if failed:
            raise failed[0][1]

    async def _accept(self, queue: str, received: Received) -> None:
        raw = received.raw
        known = self.inbox.held.get(raw.id) or self.inbox.delayed.get(raw.id)
        if known is not None:
            known.pop_receipt, known.lease_until = str(raw.pop_receipt), self.lease_end()
            self.inbox.remember(known)
            return
        self.note_sender(raw.id)
        message = envelopes.to_message(received.envelope, raw.id)
        held = Held(queue, raw.id, str(raw.pop_receipt), envelopes.order_key(received.envelope, raw.inserted_on),
                    self.lease_end(), message=message, blob=received.blob)
        delay = delay_seconds(message.visible_time)
        if delay > self.queues.lease and await self.queues.hide(held, delay):
            held.lease_until = 0.0   # due far later: back to the queue until then
        self.inbox.remember(held)

    async def promote(self, now: datetime) -> None:
        """Lease delayed messages due on the store's clock that the queue does not show yet."""
        async def promote(held: Held) -> None:
            if await self.queues.hide(held, self.queues.lease):
                held.lease_until = self.lease_end()
                self.inbox.remember(held)
            else:
                self.inbox.delayed.pop(held.message_id, None)
        await asyncio.gather(*(promote(held) for held in self.inbox.due(now)))

    def prune_timers(self, now: datetime) -> None:
        """After a full poll, a due timer this process neither holds nor delays is someone else's."""
        inbox = self.inbox
        for message_id, visible in list(inbox.timers.items()):
            if visible <= now and message_id not in inbox.held and message_id not in inbox.delayed:
                del inbox.timers[message_id]

    def next_visible_time(self) -> datetime | None:
        return min((visible for visible in self.inbox.timers.values()
                    if self.watermark is None or visible > self.watermark), default=None)

    def visible(self, now: datetime, instance_id: str | None = None) -> list[Message]:
        return [_copy(held.message) for held in self.inbox.visible(now, instance_id) if held.message]

    # deleting

    async def consume(self, messages: list[Message]) -> None:
        """Delete the messages, then forget them (so a call retried after an outage deletes the rest)."""
        held = [found for message in messages if (found := self.inbox.find(message.message_id))]
        await self.delete_all(held)
        for entry in held:
            self.inbox.forget(entry.message_id)

    async def cancel_timers(self, instance_id: str, timer_ids: list[int]) -> None:
        """Delete the instance's TimerFired messages for `timer_ids` (the caller polled its queue)."""
        wanted = set(timer_ids)
        doomed = [held for held in self.inbox.of_instance(instance_id)
                  if held.message and fired_timer_id(held.message.event) in wanted]
        await self.consume([held.message for held in doomed if held.message])

    async def drop_instance(self, instance_id: str) -> None:
        """Delete the control messages and leased work items of an instance that this process holds."""
        held = self.inbox.of_instance(instance_id)
        for entry in held:
            self.inbox.forget(entry.message_id)
        items = [entry for entry in self.leased.values() if entry.item and entry.item.instance_id == instance_id]
        for entry in items:
            del self.leased[entry.message_id]
        waiting = [entry for entry in self.prefetched.values() if entry.item and entry.item.instance_id == instance_id]
        for entry in waiting:
            del self.prefetched[entry.message_id]
        items += waiting
        await self.delete_all(held + items)

    async def delete_all(self, held: list[Held]) -> None:
        async def delete(entry: Held) -> None:
            async with self._limit:
                await self.queues.delete(entry)
        await asyncio.gather(*(delete(entry) for entry in held))

    # work items

    def note_sender(self, message_id: str) -> None:
        """Note a received message that another process sent (it shares the hub with us)."""
        if message_id not in self._mine:
            self.foreign_seen = time.monotonic()

    def held_item(self, received: Received) -> Held:
        raw = received.raw
        self.note_sender(raw.id)
        item = envelopes.to_activity(received.envelope, raw.id, int(raw.dequeue_count or 1))
        return Held(self.queues.names.workitems_queue, raw.id, str(raw.pop_receipt),
                    envelopes.order_key(received.envelope, raw.inserted_on), self.lease_end(),
                    item=item, blob=received.blob)

    async def release_items(self) -> None:
        held, self.leased = [*self.leased.values(), *self.prefetched.values()], {}
        self.prefetched.clear()
        self.items_dirty = True
        await asyncio.gather(*(self.queues.hide(entry, 0) for entry in held))

    async def give_back_unstarted(self) -> None:
        """Stop keeping own sends, and make the control messages and work items held but not started
        visible again (work in flight finishes and completes as usual)."""
        self.holding = self.prefetching = False
        held = [*self.inbox.held.values(), *self.prefetched.values()]
        self.inbox.clear()
        self.prefetched.clear()
        self.items_dirty = True
        await asyncio.gather(*(self.queues.hide(entry, 0) for entry in held), return_exceptions=True)

    async def release_all(self) -> None:
        held = [*self.inbox.held.values(), *self.leased.values(), *self.prefetched.values()]
        await asyncio.gather(*(self.queues.hide(entry, 0) for entry in held), return_exceptions=True)

    # leases

    async def renew_forever(self) -> None:
        """Keep what this process holds invisible to others (a periodic task, not a wait)."""
        while True:
            await asyncio.sleep(self.queues.lease / 3)
            try:
                await self.renew_expiring()
            except Exception as error:  # storage away: try again next round, the leases have time left
                log.warning("could not renew the leases of held queue messages: %s", describe(error))

    async def renew_expiring(self) -> None:
        """Renew the leases that end within half a lease; forget messages someone else has taken. The
        renewals run side by side: one after another, a fan-in's thousand held results can take longer
        than the half lease left on the last of them (which would then show up again for any process)."""
        lease = self.queues.lease

        async def renew(held: Held) -> None:
            async with self._renewing:
                renewed = await self.queues.hide(held, lease)
            if renewed:
                held.lease_until = self.lease_end()
            else:
                self.inbox.forget(held.message_id)
                self.leased.pop(held.message_id, None)
        results = await asyncio.gather(*(renew(held) for held in expiring(
            [*self.inbox.held.values(), *self.leased.values()], lease / 2)), return_exceptions=True)
        failed = next((result for result in results if isinstance(result, BaseException)), None)
        if failed is not None:
            raise failed


def _copy(message: Message) -> Message:
    copied = copy.copy(message)
    copied.event = copy.deepcopy(message.event)
    return copied
