"""The `{hub}-workitems` queue as one process sees it: activity items it leases, runs and completes.

Every process competes for work items (docs/azure-storage-taskhub.md §5.5). Completion sends the result to
the orchestration's control queue first, then deletes the item (§5.5), each step retried while storage is
unreachable, so an activity that finished during an outage is not run again once storage returns.
"""

from __future__ import annotations

import copy

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

    async def fetch(self, limit: int) -> list[ActivityItem]:
        leased, fresh = self.messaging.leased, []
        for received in await self.queues.receive(self.queues.names.workitems_queue, limit):
            known = leased.get(received.raw.id)
            if known is not None:
                known.pop_receipt, known.lease_until = str(received.raw.pop_receipt), self.messaging.lease_end()
            else:
                fresh.append(self.messaging.held_item(received))
        current = await self._keep_current(fresh)
        leased.update((held.message_id, held) for held in current)
        return [copy.copy(held.item) for held in sorted(current, key=lambda h: h.order) if held.item]

    async def complete(self, item: ActivityItem, result: Message) -> None:
        """Send the result, then delete the work item (a crash between runs the activity again)."""
        held = self.messaging.leased.get(item.item_id)
        if held is None:
            return
        outgoing = [Outgoing(self.queues.control_queue(result.instance_id), envelopes.message_envelope(result))]
        what = f"completing activity '{item.name}' of instance '{item.instance_id}'"
        await until_reachable(lambda: self.messaging.send(outgoing), what)
        await until_reachable(lambda: self.queues.delete(held), what)
        self.messaging.leased.pop(item.item_id, None)

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
