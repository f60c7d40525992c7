"""The store interface every durable backend implements (memory, sqlite, azure).

The engine is the only caller. A store keeps, per task hub:
- instances: one status row per instance id (the latest execution),
- history: the events of the latest execution of each instance, in order,
- messages: events addressed to an instance (ExecutionStarted, TaskCompleted, TimerFired with a
  visible time, EventRaised, ...), delivered in send order once visible,
- activity work items: scheduled activity calls, leased while they run.

Every method is async. A checkpoint is atomic: consumed messages are deleted, events appended,
the status row replaced, outgoing messages and activity items written, all or nothing; it is
rejected with `StaleCheckpointError` when the instance's etag moved since it was read.
Entities are instances too (id `@name@key`); their state is kept in `InstanceState.output`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from funcemu.errors import FuncemuError


class RuntimeStatus(str, enum.Enum):
    """The management API's status names; the values are DTFx's `OrchestrationStatus` numbers."""

    Running = "Running"
    Completed = "Completed"
    ContinuedAsNew = "ContinuedAsNew"
    Failed = "Failed"
    Canceled = "Canceled"
    Terminated = "Terminated"
    Pending = "Pending"
    Suspended = "Suspended"

    @property
    def number(self) -> int:
        return _STATUS_NUMBERS[self]

    @property
    def is_terminal(self) -> bool:
        return self in (RuntimeStatus.Completed, RuntimeStatus.Failed, RuntimeStatus.Canceled,
                        RuntimeStatus.Terminated)


_STATUS_NUMBERS = {
    RuntimeStatus.Running: 0, RuntimeStatus.Completed: 1, RuntimeStatus.ContinuedAsNew: 2,
    RuntimeStatus.Failed: 3, RuntimeStatus.Canceled: 4, RuntimeStatus.Terminated: 5,
    RuntimeStatus.Pending: 6, RuntimeStatus.Suspended: 7,
}


@dataclass
class InstanceState:
    """One row of the instances table: the status of an instance's latest execution."""

    instance_id: str
    name: str
    execution_id: str
    runtime_status: RuntimeStatus
    created_time: datetime          # timezone-aware UTC
    last_updated_time: datetime     # timezone-aware UTC
    input: str | None = None        # ExecutionStarted.Input as stored (JSON text)
    output: str | None = None       # JSON text; failure reason or terminate reason as raw text
    custom_status: str | None = None  # JSON text
    parent_instance_id: str | None = None
    version: str = ""
    etag: Any = None                # opaque; set by the store on read and on write


@dataclass
class Message:
    """An event addressed to an orchestration (or entity) instance."""

    instance_id: str
    event: dict[str, Any]           # a history event in the SDK's JSON shape (see durable/history.py)
    execution_id: str | None = None  # the execution it belongs to; None = whatever is current
    visible_time: datetime | None = None  # not delivered before this (clock) time; timers use it
    message_id: str = ""            # assigned by the store when sent


@dataclass
class ActivityItem:
    """A scheduled activity call (TaskScheduled) waiting to run or running."""

    instance_id: str
    execution_id: str
    task_id: int                    # the TaskScheduled EventId
    name: str
    input: str | None               # the action's input: JSON text
    item_id: str = ""               # assigned by the store
    dequeue_count: int = 0


@dataclass
class Checkpoint:
    """Everything one orchestration episode changes, applied atomically."""

    instance_id: str
    etag: Any                       # the etag of the InstanceState the episode started from
    state: InstanceState            # the new status row
    consumed: list[Message] = field(default_factory=list)   # messages applied (deleted)
    new_events: list[dict[str, Any]] = field(default_factory=list)  # appended to the history
    replace_history: bool = False   # continue-as-new / rewind: history becomes exactly new_events
    messages: list[Message] = field(default_factory=list)   # outgoing, to any instance
    activities: list[ActivityItem] = field(default_factory=list)
    # TimerFired messages of this instance (by TimerId) that will never matter: timers the code
    # canceled, or every outstanding timer once the instance is finished. The store deletes them.
    canceled_timers: list[int] = field(default_factory=list)


@dataclass
class InstanceQuery:
    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: list[RuntimeStatus] | None = None
    instance_id_prefix: str | None = None
    top: int | None = None          # page size; None = all
    continuation: str | None = None  # opaque token from the previous page


class StaleCheckpointError(FuncemuError):
    def __init__(self, instance_id: str) -> None:
        super().__init__(f"checkpoint for instance '{instance_id}' is stale: another episode won")


class Store(Protocol):
    """The durable backend. Instances are identified by id within one task hub."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # instances and history
    async def create_instance(self, state: InstanceState, start: Message) -> None:
        """Create or replace an instance: drop its old history and pending messages, write the
        status row and enqueue `start` (an ExecutionStarted message)."""
    async def get_instance(self, instance_id: str) -> InstanceState | None: ...
    async def get_history(self, instance_id: str) -> list[dict[str, Any]]: ...
    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceState], str | None]:
        """Instances matching the query ordered by created time then id, and the continuation
        token of the next page (None when this is the last page)."""
    async def purge_instances(self, instance_ids: list[str]) -> int:
        """Delete instances with their history, messages and activity items; return how many existed."""
    async def delete_task_hub(self) -> None: ...

    # orchestration messages
    async def send_messages(self, messages: list[Message]) -> None: ...
    async def ready_instances(self, now: datetime, limit: int) -> list[str]:
        """Ids of instances with at least one message visible at `now`, oldest message first."""
    async def pending_messages(self, instance_id: str, now: datetime) -> list[Message]:
        """The instance's messages visible at `now`, in send order."""
    async def next_visible_time(self) -> datetime | None:
        """The earliest visible_time among messages not yet visible (for timers), or None."""
    async def checkpoint(self, cp: Checkpoint) -> None: ...

    # activities
    async def fetch_activities(self, limit: int) -> list[ActivityItem]:
        """Lease up to `limit` activity items that are not leased; increments dequeue_count."""
    async def complete_activities(self, done: list[tuple[ActivityItem, Message]]) -> None:
        """For each item, atomically delete it and send its result (TaskCompleted/TaskFailed); an item
        that no longer exists sends nothing. One transaction where the store has them."""
    async def release_activity_leases(self) -> None:
        """Make every leased item available again (a restarted host re-runs in-flight activities)."""
