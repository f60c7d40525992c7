"""The `{hub}-workitems` queue as one process sees it: activity items it leases, runs and completes.

Every process competes for work items (docs/azure-storage-taskhub.md §5.5), except those a process sent
leased to itself (`Messaging.prefetched`, no receive needed). Completion sends the result to the
orchestration's control queue first, then deletes the item (§5.5), each step retried while storage is
unreachable, so an activity that finished during an outage is not run again once storage returns.
"""

from __future__ import annotations

import asyncio
import copy
import time

from funcemu.durable.store import azure_envelope as envelopes
from funcemu.durable.store.azure_history import HistoryTable
from funcemu.durable.store.azure_messaging import Messaging, Outgoing
from funcemu.durable.store.azure_names import escape_key
from funcemu.durable.store.azure_outage import is_transient, until_reachable
from funcemu.durable.store.azure_queues import Held
from funcemu.durable.store.base import ActivityItem, Message


class WorkItems:
    def __init__(self, messaging: Messaging, history: HistoryTable, executions: dict[str, str | None]) -> None:
        self.messaging, self.queues, self.history = messaging, messaging.queues, history
        self._executions = executions    # instance -> current execution as far as we know; None = purged
        self._completing: set[str] = set()   # items whose completion is under way

    async def fetch(self, limit: int, every: float) -> list[ActivityItem]:
        """Lease up to `limit` items: first those this process sent itself (`Messaging.prefetched`), then
        from the queue, which is read only when this process sent to it visibly since its last read, that
        read filled its limit, or `every` seconds passed (items other processes sent)."""
        messaging = self.messaging
        messaging.prefetching = True
        prefetched, late = messaging.take_prefetched(limit)
        try:
            if late:
                await self._give_back(late)
            current = await self._receive(limit - len(prefetched), every) if len(prefetched) < limit else []
        except BaseException:
            for held in reversed(prefetched):      # kept for the next fetch
                messaging.prefetched[held.message_id] = held
                messaging.prefetched.move_to_end(held.message_id, last=False)
            raise
        messaging.leased.update((held.message_id, held) for held in prefetched)
        return [copy.copy(held.item) for held in sorted(prefetched + current, key=lambda h: h.order) if held.item]

    async def _receive(self, limit: int, every: float) -> list[Held]:
        messaging = self.messaging
        started = time.monotonic()
        if not messaging.items_dirty and started - messaging.items_polled < every:
            return []
        messaging.items_dirty, messaging.items_polled = False, started
        try:
            batch = await self.queues.receive(self.queues.names.workitems_queue, limit)
        except BaseException:
            messaging.items_dirty = True
            raise
        if len(batch) >= limit:
            messaging.items_dirty = True     # there may be more
        leased, fresh = messaging.leased, []
        for received in batch:
            known = leased.get(received.raw.id)
            if known is not None:
                known.pop_receipt, known.lease_until = str(received.raw.pop_receipt), self.messaging.lease_end()
            else:
                fresh.append(self.messaging.held_item(received))
        current = await self._keep_current(fresh)
        leased.update((held.message_id, held) for held in current)
        return current

    async def _give_back(self, held: list[Held]) -> None:
        """Make prefetched items that waited too long visible to every process (best effort: else they
        show up when their lease ends)."""
        self.messaging.items_dirty = True
        results = await asyncio.gather(*(self.queues.hide(entry, 0) for entry in held), return_exceptions=True)
        failed = next((error for error in results if isinstance(error, BaseException)), None)
        if failed is not None and not is_transient(failed):
            raise failed

    async def complete_many(self, done: list[tuple[ActivityItem, Message]]) -> None:
        """Complete the items concurrently (queue messages cannot share a request); every item gets its
        turn even when another fails, then the first error is raised."""
        # a duplicate item finds the first in `_completing` and returns: the first result wins
        results = await asyncio.gather(*(self.complete(item, result) for item, result in done),
                                       return_exceptions=True)
        for error in results:
            if isinstance(error, BaseException):
                raise error

    async def complete(self, item: ActivityItem, result: Message) -> None:
        """Send the result, then delete the work item (a crash between runs the activity again)."""
        held = self.messaging.leased.get(item.item_id)
        if held is None or item.item_id in self._completing:
            return
        self._completing.add(item.item_id)
        try:
            outgoing = [Outgoing(self.queues.control_queue(result.instance_id),
                                 envelopes.message_envelope(result))]
            what = f"completing activity '{item.name}' of instance '{item.instance_id}'"
            await until_reachable(lambda: self.messaging.send(outgoing), what)
            await until_reachable(lambda: self.queues.delete(held), what)
            self.messaging.leased.pop(item.item_id, None)
        except Exception:
            await self._abandon(held)
            raise
        finally:
            self._completing.discard(item.item_id)

    async def _abandon(self, held: Held) -> None:
        """A completion that failed for good: the item goes back to the queue to run again (at least
        once), instead of staying leased, its lease renewed, while nothing will complete it."""
        if self.messaging.leased.pop(held.message_id, None) is None:
            return
        self.messaging.items_dirty = True
        # best effort: if storage cannot take it now, the item shows up when its lease runs out
        await asyncio.gather(self.queues.hide(held, 0), return_exceptions=True)

    async def _keep_current(self, fetched: list[Held]) -> list[Held]:
        """Drop (delete) work items of executions that were replaced or purged."""
        keep: list[Held] = []
        drop: list[Held] = []
        refreshed: set[str] = set()
        for held in fetched:
            instance_id = held.item.instance_id if held.item else ""
            if not self._matches(held) and instance_id not in refreshed:
                refreshed.add(instance_id)
                await self._refresh_execution(instance_id)
            (keep if self._matches(held) else drop).append(held)
        try:
            await self.messaging.delete_all(drop)
        except Exception as error:
            if not is_transient(error):
                raise      # storage away: the dropped items come back after their lease and go then
        return keep

    async def _refresh_execution(self, instance_id: str) -> None:
        """Re-read the current execution from the sentinel (the cache may be another process's past).
        Unreachable storage leaves the instance unknown, so its items run (at least once)."""
        try:
            sentinel = await self.history.sentinel(escape_key(instance_id))
        except Exception as error:
            if not is_transient(error):
                raise
            self._executions.pop(instance_id, None)
            return
        if sentinel is not None:
            self._executions[instance_id] = sentinel.get("ExecutionId")
        elif instance_id in self._executions:
            self._executions[instance_id] = None    # purged

    def _matches(self, held: Held) -> bool:
        """Whether a work item belongs to the current execution, as far as this process knows."""
        assert held.item is not None
        if held.item.instance_id not in self._executions:
            return True
        return self._executions[held.item.instance_id] == held.item.execution_id
