"""`MemoryStore`: the durable store in plain dicts, heaps and ordered dicts (tests and benchmarks).

Every hot call is O(1) or O(log n): each instance has its own message queue in send order, timers wait
in a heap, and ready instances sit in a heap keyed by their oldest visible message.

Visibility is tracked against a watermark, the `now` of the latest `ready_instances` call: messages
visible at the watermark are "promoted" into the ready heap, the others wait in the timer heap, whose top
is `next_visible_time()`. So every pending timed message is either reported ready or counted as the next
timer, and a due timer of a busy instance never makes the dispatcher spin. A `now` earlier than the
watermark (a clock reset) rebuilds the index once, so answers stay exact for any `now`.

Values are copied in and out (states whole, events one level deep), so a caller that mutates what it
passed or got back does not change what is stored; the other stores serialize, and this one must behave
the same way.
"""

from __future__ import annotations

import base64
import copy
import heapq
import itertools
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from funcemu.durable.history import EventType
from funcemu.durable.store.base import (
    ActivityItem,
    Checkpoint,
    InstanceQuery,
    InstanceState,
    Message,
    StaleCheckpointError,
)

Event = dict[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class _Instance:
    state: InstanceState
    history: list[Event] = field(default_factory=list)


class MemoryStore:
    """A task hub that lives as long as the process (see the module docstring for the indexes)."""

    # the history returned by get_history changes only through this store's checkpoint calls, so the engine
    # may keep the history it checkpointed last (keyed by etag) instead of reading it again
    reusable_history: bool = True

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._ids = itertools.count(1)          # message, item and etag numbers: one global sequence
        self._instances: dict[str, _Instance] = {}
        self._queues: dict[str, OrderedDict[int, Message]] = {}
        self._heads: dict[str, int] = {}        # instance -> seq of its oldest promoted message
        self._ready: list[tuple[int, str]] = []  # (head seq, instance); stale entries skipped lazily
        self._timers: list[tuple[datetime, int, str]] = []  # not yet promoted: (visible, seq, instance)
        self._watermark: datetime | None = None
        self._available: OrderedDict[int, ActivityItem] = OrderedDict()
        self._leased: dict[int, ActivityItem] = {}
        self._items_of: dict[str, set[int]] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    # instances and history

    async def create_instance(self, state: InstanceState, start: Message) -> None:
        self._drop(state.instance_id)
        self._instances[state.instance_id] = _Instance(self._stamp(state))
        state.etag = self._instances[state.instance_id].state.etag
        self._send(start)

    async def get_instance(self, instance_id: str) -> InstanceState | None:
        found = self._instances.get(instance_id)
        return copy.copy(found.state) if found else None

    async def get_history(self, instance_id: str) -> list[Event]:
        found = self._instances.get(instance_id)
        return [dict(event) for event in found.history] if found else []

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceState], str | None]:
        page, token = page_of([entry.state for entry in self._instances.values()], query)
        return [copy.copy(state) for state in page], token

    async def purge_instances(self, instance_ids: list[str]) -> int:
        existed = 0
        for instance_id in instance_ids:
            existed += instance_id in self._instances
            self._drop(instance_id)
        return existed

    async def delete_task_hub(self) -> None:
        self._clear()

    # orchestration messages

    async def send_messages(self, messages: list[Message]) -> None:
        for message in messages:
            self._send(message)

    async def ready_instances(self, now: datetime, limit: int) -> list[str]:
        if limit <= 0:
            return []
        self._promote(now)
        taken: list[tuple[int, str]] = []
        seen: set[str] = set()
        while self._ready and len(taken) < limit:
            seq, instance_id = heapq.heappop(self._ready)
            if self._heads.get(instance_id) == seq and instance_id not in seen:
                taken.append((seq, instance_id))
                seen.add(instance_id)
        for entry in taken:
            heapq.heappush(self._ready, entry)
        return [instance_id for _, instance_id in taken]

    async def pending_messages(self, instance_id: str, now: datetime) -> list[Message]:
        queue = self._queues.get(instance_id)
        return [_copy_message(m) for m in queue.values() if is_visible(m, now)] if queue else []

    async def next_visible_time(self) -> datetime | None:
        """The earliest timer not yet visible at the `now` of the latest `ready_instances` call."""
        while self._timers and not self._exists(self._timers[0][1], self._timers[0][2]):
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def checkpoint(self, cp: Checkpoint) -> None:
        current = self._instances.get(cp.instance_id)
        if (current.state.etag if current else None) != cp.etag:
            raise StaleCheckpointError(cp.instance_id)
        self._consume_all(cp.consumed)
        history = [] if cp.replace_history or current is None else current.history
        history.extend(dict(event) for event in cp.new_events)
        self._instances[cp.instance_id] = _Instance(self._stamp(cp.state), history)
        cp.state.etag = self._instances[cp.instance_id].state.etag
        for message in cp.messages:
            self._send(message)
        for item in cp.activities:
            self._add_item(item)
        self._cancel_timers(cp.instance_id, cp.canceled_timers)

    # activities

    async def fetch_activities(self, limit: int) -> list[ActivityItem]:
        fetched: list[ActivityItem] = []
        while self._available and len(fetched) < limit:
            item_id, item = self._available.popitem(last=False)
            item.dequeue_count += 1
            self._leased[item_id] = item
            fetched.append(copy.copy(item))
        return fetched

    async def complete_activities(self, done: list[tuple[ActivityItem, Message]]) -> None:
        """A completion for an item that no longer exists (purged, replaced) sends nothing."""
        for item, result in done:
            self._complete(item, result)

    def _complete(self, item: ActivityItem, result: Message) -> None:
        item_id = int(item.item_id)
        stored = self._leased.pop(item_id, None) or self._available.pop(item_id, None)
        if stored is None:
            return
        siblings = self._items_of[stored.instance_id]
        siblings.discard(item_id)
        if not siblings:
            del self._items_of[stored.instance_id]
        self._send(result)

    async def release_activity_leases(self) -> None:
        for item_id in sorted(self._leased, reverse=True):
            self._available[item_id] = self._leased.pop(item_id)
            self._available.move_to_end(item_id, last=False)

    # internals: instances

    def _stamp(self, state: InstanceState) -> InstanceState:
        stored = copy.copy(state)
        stored.etag = next(self._ids)
        return stored

    def _drop(self, instance_id: str) -> None:
        """Forget an instance: status, history, messages and activity items."""
        self._instances.pop(instance_id, None)
        self._queues.pop(instance_id, None)
        self._heads.pop(instance_id, None)
        for item_id in self._items_of.pop(instance_id, ()):
            self._available.pop(item_id, None)
            self._leased.pop(item_id, None)

    def _add_item(self, item: ActivityItem) -> None:
        item_id = next(self._ids)
        stored = copy.copy(item)
        stored.item_id, stored.dequeue_count = str(item_id), 0
        self._available[item_id] = stored
        self._items_of.setdefault(item.instance_id, set()).add(item_id)

    # internals: messages and the ready index

    def _send(self, message: Message) -> None:
        seq = next(self._ids)
        stored = _copy_message(message)
        stored.message_id = str(seq)
        self._queues.setdefault(stored.instance_id, OrderedDict())[seq] = stored
        self._index(stored.instance_id, seq, stored.visible_time)

    def _index(self, instance_id: str, seq: int, visible: datetime | None) -> None:
        """Make the message a head candidate now, or a timer until the watermark passes it."""
        if visible is not None and not self._promoted(visible):
            heapq.heappush(self._timers, (visible, seq, instance_id))
        else:
            self._set_head(instance_id, seq)

    def _promoted(self, visible: datetime | None) -> bool:
        return visible is None or (self._watermark is not None and visible <= self._watermark)

    def _set_head(self, instance_id: str, seq: int) -> None:
        head = self._heads.get(instance_id)
        if head is None or seq < head:
            self._heads[instance_id] = seq
            heapq.heappush(self._ready, (seq, instance_id))

    def _promote(self, now: datetime) -> None:
        if self._watermark is not None and now < self._watermark:
            self._rebuild(now)
            return
        self._watermark = now
        while self._timers and self._timers[0][0] <= now:
            _, seq, instance_id = heapq.heappop(self._timers)
            if self._exists(seq, instance_id):
                self._set_head(instance_id, seq)

    def _rebuild(self, now: datetime) -> None:
        """The clock went back: recompute which messages count as visible (O(messages), rare)."""
        self._watermark = now
        self._heads, self._ready, self._timers = {}, [], []
        for instance_id, queue in self._queues.items():
            for seq, message in queue.items():
                self._index(instance_id, seq, message.visible_time)

    def _cancel_timers(self, instance_id: str, timer_ids: list[int]) -> None:
        """Delete the instance's TimerFired messages for `timer_ids`, including ones just sent."""
        queue = self._queues.get(instance_id)
        if not timer_ids or not queue:
            return
        wanted = set(timer_ids)
        self._consume(instance_id, [seq for seq, m in queue.items() if fired_timer_id(m.event) in wanted])

    def _consume_all(self, messages: list[Message]) -> None:
        by_instance: dict[str, list[int]] = {}
        for message in messages:
            by_instance.setdefault(message.instance_id, []).append(int(message.message_id))
        for instance_id, seqs in by_instance.items():
            self._consume(instance_id, seqs)

    def _consume(self, instance_id: str, seqs: list[int]) -> None:
        queue = self._queues.get(instance_id)
        if queue is None:
            return
        for seq in seqs:
            queue.pop(seq, None)
        if not queue:
            del self._queues[instance_id]
            self._heads.pop(instance_id, None)
        elif self._heads.get(instance_id) not in queue:
            self._heads.pop(instance_id, None)
            self._set_head_from(instance_id, queue)

    def _set_head_from(self, instance_id: str, queue: OrderedDict[int, Message]) -> None:
        """The head is the oldest promoted message; unpromoted timers before it are skipped."""
        for seq, message in queue.items():
            if self._promoted(message.visible_time):
                self._set_head(instance_id, seq)
                return

    def _exists(self, seq: int, instance_id: str) -> bool:
        return seq in self._queues.get(instance_id, {})


# shared helpers (the sqlite and azure stores use the same continuation format)


def matches(state: InstanceState, query: InstanceQuery) -> bool:
    """Whether `state` passes the query's filters (paging aside); bounds are inclusive."""
    if query.created_from is not None and state.created_time < query.created_from:
        return False
    if query.created_to is not None and state.created_time > query.created_to:
        return False
    if query.statuses and state.runtime_status not in query.statuses:
        return False
    return not query.instance_id_prefix or state.instance_id.startswith(query.instance_id_prefix)


def page_of(states: list[InstanceState], query: InstanceQuery,
            key: Callable[[InstanceState], str] | None = None) -> tuple[list[InstanceState], str | None]:
    """The query's page of `states` (filtered, in `key` order: the instance id by default, as the
    provider returns rows in PartitionKey order, azure-storage-taskhub.md §4.4) and the next token."""
    order = key or _order_key
    after = decode_continuation(query.continuation)
    keyed = sorted(((order(state), state) for state in states if matches(state, query)), key=lambda pair: pair[0])
    if after is not None:
        keyed = [pair for pair in keyed if pair[0] > after]
    page = keyed[:query.top] if query.top and query.top > 0 else keyed
    token = encode_continuation(page[-1][0]) if len(page) < len(keyed) else None
    return [state for _, state in page], token


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def encode_continuation(last_key: str) -> str:
    """The opaque token of a page that ended at the instance (key) `last_key`."""
    return base64.urlsafe_b64encode(json.dumps([last_key]).encode()).decode()


def decode_continuation(token: str | None) -> str | None:
    if not token:
        return None
    try:
        (last_key,) = json.loads(base64.urlsafe_b64decode(token.encode()))
        if isinstance(last_key, str):
            return last_key
    except (ValueError, TypeError):
        pass
    raise ValueError(f"invalid continuation token {token!r}: pass back the token of the previous page")


def _order_key(state: InstanceState) -> str:
    return state.instance_id


def fired_timer_id(event: dict[str, Any]) -> int | None:
    """The TimerId of a TimerFired event, else None."""
    return event.get("TimerId") if event.get("EventType") == EventType.TimerFired else None


def is_visible(message: Message, now: datetime) -> bool:
    return message.visible_time is None or message.visible_time <= now


def _copy_message(message: Message) -> Message:
    copied = copy.copy(message)
    copied.event = dict(message.event)
    return copied
