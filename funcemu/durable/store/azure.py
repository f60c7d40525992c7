"""`AzureStore`: the durable store in Azure Storage (Azurite or an account), in the layout of the real
DurableTask.AzureStorage provider, so Storage Explorer, DF Monitor and DTFx read the hub
(docs/azure-storage-taskhub.md): `{Hub}History`, `{Hub}Instances`, `{Hub}Partitions` tables, control
queues `{hub}-control-NN` chosen by FNV-1a of the instance id, `{hub}-workitems` for activities, gzip
blobs in `{hub}-largemessages`.

A checkpoint cannot be one transaction across a table and queues, so it runs in this order:
1. one History transaction (more past 99 rows) with the event rows, the outgoing messages as "outbox"
   rows, and the sentinel guarded by the ETag the episode started from (412/409 -> StaleCheckpointError,
   and nothing at all was written);
2. the Instances row (replaced; it carries the new sentinel ETag);
3. the outbox is sent to the queues, then its rows are deleted: by the instance's next History transaction
   when it comes within OUTBOX_SWEEP_AGE (no request of their own), else by a sweep, at once when the
   instance is finished;
4. the consumed messages are deleted.
A crash after 1 loses nothing: the consumed messages come back after their lease and replay against a
history that already holds the episode (the engine drops duplicates), and the outbox rows, still in
the partition, are sent by the next `get_history` of the instance. A crash after 3 only sends some
messages twice. Delivery is at least once, as in the provider (§5.7), but a stale episode sends nothing.

Storage requests are what bounds throughput on Azurite (issue #8), so the store avoids those the layout
does not need: an episode starts from what this process checkpointed last (`_Known`: no reads; the ETag
still guards the commit); status reads take the Instances row alone; once this process dispatches
orchestrations, the control messages and work items it sends go to the queue already leased to itself
(invisible, as if received: no receive), up to a limit, past which they are sent visible for any process;
queues are read when this process sent to them or the polling interval passed, a page at a time until one
comes back short; History transactions are written by `azure_batch` instead of the SDK's multipart code.

Storage going away (Azurite restarted) loses nothing either: a poll that cannot reach it receives nothing
and the dispatcher polls again; a commit whose answer was lost is looked up in the sentinel (it carries
the checkpoint's id), and steps 2-4 and activity results are retried until storage answers
(azure_outage.py).

Several processes may share a hub: each polls every control queue, whoever holds an instance's messages
runs its episode, and the sentinel ETag lets only one episode of a kind commit (the loser is replayed).
A process's own sends stay with it (up to the limits above) until it closes or dies (then after the lease).
Limits: no partition leases, so no affinity of instances to processes; cross-process timers fire at the
queue's real-time visibility, in-process ones exactly at the store clock's time.

Only one app processes a hub at a time, as in the provider (§7.1, azure_applease.py): `open()` takes the
lease on `{hub}-applease` with the id of this process's AppName (WEBSITE_SITE_NAME, else DTFX_APP_NAME,
else ""), so processes of one app share it and the work, and `close()` releases it. While another app
holds it, the store receives nothing (`ready_instances`, `pending_messages` and `fetch_activities` answer
empty: the `_dispatching` gate) and tries again every 300 s; the management API keeps working meanwhile,
as the provider's client does: starting, raising events, terminating, querying and purging only read and
write the tables and send to the queues, and the lease holder processes what they send. `delete_task_hub`
deletes the container with the lease (broken first if another app holds it).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import secrets
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import TableEntity
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from funcemu.durable.store import azure_applease as applease
from funcemu.durable.store import azure_envelope as envelopes
from funcemu.durable.store import azure_rows as rows
from funcemu.durable.store.azure_activities import WorkItems
from funcemu.durable.store.azure_blobs import LargeMessages
from funcemu.durable.store.azure_history import Committed, HistoryTable
from funcemu.durable.store.azure_instances import InstancesTable
from funcemu.durable.store.azure_messaging import Messaging, Outgoing
from funcemu.durable.store.azure_names import (
    AzureStoreError,
    StorageUnreachableError,
    TaskHubNameError,
    escape_key,
    expand_connection_string,
    hub_names,
)
from funcemu.durable.store.azure_outage import Reachability, describe, is_transient, until_reachable
from funcemu.durable.store.azure_queues import HubQueues, ignore
from funcemu.durable.store.base import (
    ActivityItem,
    Checkpoint,
    InstanceQuery,
    InstanceState,
    Message,
    StaleCheckpointError,
)

__all__ = ["AzureStore", "AzureStoreError", "StorageUnreachableError", "TaskHubNameError"]
log = logging.getLogger("funcemu.durable")

# Seconds between polls for what other processes send (own sends wake at once); the provider's 30 s makes
# local runs crawl (§8). On Azurite, another process's event woke an idle instance after 0.25-0.4 s median,
# 0.55 s worst, at 0.5 s, for 3 % of a core spent polling (funcemu + Azurite); at 1 s: 0.45-0.55 s, 1.0 s, 1.4 %.
DEFAULT_MAX_POLLING_INTERVAL = 0.5
DEFAULT_LEASE = 60                   # seconds a received message stays invisible; renewed while held
OUTBOX_RECOVERY_AGE = 10.0           # seconds before another process's unsent outbox is taken over
# Sent outbox rows are deleted by the instance's next checkpoint (in its History transaction, no request of
# their own) when it comes within OUTBOX_SWEEP_AGE seconds, else by a sweep every SWEEP_INTERVAL seconds.
OUTBOX_SWEEP_AGE, SWEEP_INTERVAL = 2.0, 0.5
PROBE_CONNECT_TIMEOUT, PROBE_READ_TIMEOUT = 5.0, 30.0
# Seconds every other request may take to connect, and to wait for the next bytes of an answer: the storage
# SDKs' own defaults, which they set only in a transport they build. One passed to them keeps azure-core's
# 300 s for both, so one request storage never answered stalled its caller 5 minutes per attempt (up to 20
# with the SDK's retries). Not less: Azurite on a loaded machine was seen answering nothing for 26 s, and a
# receive that times out leaves its messages leased to nobody for a lease.
CONNECT_TIMEOUT, READ_TIMEOUT = 20.0, 60.0
# A queue is read again for other processes' messages once this share of the polling interval has passed
# since its last read (the engine wakes at the interval; a little less keeps each wake-up a read).
STALE_SHARE = 0.9
KNOWN_LIMIT = 2000                   # instances whose last checkpoint this process remembers
# Seconds after a sign of another process on the hub (a message this process did not send, a lost ETag
# race) during which an episode checks the sentinel before trusting what this process checkpointed.
SHARED_WINDOW = 300.0
# Local endpoints answer in milliseconds: retry soon and few times (the SDK waits 15 s, 18 s, 42 s).
_STORAGE_RETRY: dict[str, Any] = {"retry_total": 3, "initial_backoff": 0.2, "increment_base": 1,
                                  "random_jitter_range": 0}
_TABLE_RETRY: dict[str, Any] = {"retry_total": 3, "retry_backoff_factor": 0.2}


# The instance whose episode runs in this task: `pending_messages` sets it, and `get_instance` and
# `get_history` then answer from what this process checkpointed last (see `_Known`).
_EPISODE: ContextVar[str | None] = ContextVar("funcemu_azure_episode", default=None)


@dataclass
class _Known:
    """An instance as this process's last checkpoint (or create) left it: the status row with the
    sentinel's ETag, and the current execution's events when known. An episode starts from it without
    reading storage; if another process moved the instance on meanwhile, the ETag-guarded commit fails
    (StaleCheckpointError), the entry is dropped and the engine replays from a fresh read. The entry is
    checked against the sentinel (one read) first when an episode used it and ended without a checkpoint
    (an old history can make the replay itself fail), and while another process is known to write the
    hub (`AzureStore._shared`). Other callers (status queries, the management API) always read storage."""

    state: InstanceState
    history: list[dict[str, Any]] | None
    used: bool = False      # an episode started from it and has not checkpointed


@dataclass
class _Unswept:
    """Outbox rows of one instance that were sent and are still to be deleted."""

    key: str                # the History partition
    rows: list[str]
    since: float            # monotonic time they were sent


class AzureStore:
    """See the module docstring. `open()` checks every endpoint and creates the hub."""

    def __init__(self, connection_string: str, hub_name: str, *, partition_count: int = 4,
                 max_queue_polling_interval: float = DEFAULT_MAX_POLLING_INTERVAL,
                 lease_seconds: int = DEFAULT_LEASE) -> None:
        self.names = hub_names(hub_name, partition_count)
        self.max_queue_polling_interval = max_queue_polling_interval
        self._connection = expand_connection_string(connection_string)
        self._lease = int(lease_seconds)
        self._executions: dict[str, str | None] = {}  # instance -> current execution; None = purged
        self._flushing: set[str] = set()              # outbox rows this process is sending
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._moved_seen = float("-inf")   # monotonic time another process was seen moving an instance on
        self._unswept: dict[str, _Unswept] = {}   # instance -> sent outbox rows to delete
        self._sweep_now: list[_Unswept] = []      # rows whose deletion failed: the next sweep tries again
        self._sweeper: asyncio.Task[None] | None = None
        self._reachability = Reachability()
        self._hub_ready = False
        self._renewer: asyncio.Task[None] | None = None
        self._services: tuple[TableServiceClient, QueueServiceClient, BlobServiceClient] | None = None
        self._app_name = applease.app_name()
        self._app_lease: applease.AppLease | None = None

    @property
    def poll_interval(self) -> float:
        """How often the engine polls the queues for messages sent by other processes (its own sends
        wake it at once); `maxQueuePollingInterval` in host.json."""
        return self.max_queue_polling_interval

    # lifecycle

    async def open(self) -> None:
        try:
            tables = TableServiceClient.from_connection_string(self._connection, transport=_transport(),
                                                               **_TABLE_RETRY)
            queues = QueueServiceClient.from_connection_string(self._connection, transport=_transport(),
                                                               **_STORAGE_RETRY)
            blobs = BlobServiceClient.from_connection_string(self._connection, transport=_transport(),
                                                             **_STORAGE_RETRY)
        except ValueError as error:
            raise AzureStoreError(f"the Azure Storage connection string is not valid ({error}); expected "
                                  "'DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...' or "
                                  "'UseDevelopmentStorage=true'") from None
        self._services = (tables, queues, blobs)
        self.blobs = LargeMessages(blobs, self.names.largemessages_container)
        self.history = HistoryTable(tables.get_table_client(self.names.history_table), self.blobs)
        self.instances = InstancesTable(tables.get_table_client(self.names.instances_table), self.blobs,
                                        self.names.hub)
        self.queues = HubQueues(queues, self.names, self.blobs, self._lease)
        self.messaging = Messaging(self.queues)
        self.work_items = WorkItems(self.messaging, self.history, self._executions)
        self._app_lease = applease.AppLease(blobs, self.names, self._app_name, self._app_lease_lost)
        try:
            await self._probe()
            await self._ensure_hub()
            await self._app_lease.start()
        except BaseException:
            await self.close()
            raise
        self._renewer = asyncio.create_task(self.messaging.renew_forever())
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        """Stop renewing leases and give back what this process holds, so a restart sees it at once."""
        for task in (self._renewer, self._sweeper):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._renewer = self._sweeper = None
        if self._services is not None and self._hub_ready:
            try:
                await self._sweep(0.0)
            except Exception as error:  # left for the next reader's recovery, which drops them (old ids)
                log.warning("could not delete sent outbox rows: %s", describe(error))
            await self.messaging.release_all()
        if self._app_lease is not None:
            await self._app_lease.stop()
        for service in self._services or ():
            await service.close()
        self._services = None

    async def _probe(self) -> None:
        """One call per service without retries: a wrong endpoint fails in seconds, a stuck one in
        PROBE_READ_TIMEOUT, each with one message naming the endpoint."""
        assert self._services is not None
        results = await asyncio.gather(
            *(service.get_service_properties(retry_total=0, connection_timeout=PROBE_CONNECT_TIMEOUT,
                                             read_timeout=PROBE_READ_TIMEOUT)
              for service in self._services), return_exceptions=True)
        services: tuple[Any, ...] = self._services
        for label, service, result in zip(("table", "queue", "blob"), services, results, strict=True):
            endpoint = str(service.url).split("?")[0].rstrip("/")
            if isinstance(result, ServiceRequestError):
                raise StorageUnreachableError(label, endpoint, describe(result)) from None
            if isinstance(result, ServiceResponseError):
                raise StorageUnreachableError(label, endpoint, f"no answer within {PROBE_READ_TIMEOUT:g} s "
                                                               f"({describe(result)})") from None
            if isinstance(result, ClientAuthenticationError):
                raise AzureStoreError(f"the Azure Storage {label} endpoint {endpoint} refused the account "
                                      f"credentials: {describe(result)}") from None
            if isinstance(result, BaseException):
                raise result

    async def _ensure_hub(self) -> None:
        """Create what the provider creates with a hub (§1.4); existing resources are kept."""
        assert self._services is not None
        tables, _, blobs = self._services
        names = self.names
        await asyncio.gather(
            *(ignore(tables.create_table(name), ResourceExistsError)
              for name in (names.history_table, names.instances_table, names.partitions_table)),
            self.queues.create_queues(), self._create_app_lease())
        partitions = tables.get_table_client(names.partitions_table)
        await asyncio.gather(*(ignore(partitions.create_entity({"PartitionKey": "", "RowKey": queue}),
                                       ResourceExistsError) for queue in names.control_queues))
        self._hub_ready = True

    async def _create_app_lease(self) -> None:
        """The `{hub}-applease` container and its info blob; a hub created again after `delete_task_hub`
        while this store runs is leased again at once."""
        assert self._app_lease is not None
        await self._app_lease.create()
        if self._app_lease.running and not self._app_lease.owned:
            await self._app_lease.acquire()

    def _dispatching(self) -> bool:
        """Whether this process may take work from the hub's queues: the hub exists and this app holds
        its app lease (azure_applease.py)."""
        return self._hub_ready and self._app_lease is not None and self._app_lease.owned

    async def _app_lease_lost(self) -> None:
        """The app lease was refused on renewal (another app took it over): stop keeping sends and give
        back the control messages and work items this process holds and has not started on (in-flight
        work finishes; messages it had not deleted yet come back and are replayed by the new holder
        against the history, as after a crash)."""
        log.info("task hub '%s': the app lease was lost; this process stops processing the hub's queues "
                 "and tries to take the lease again", self.names.hub)
        await self.messaging.give_back_unstarted()

    async def _ready(self) -> None:
        if not self._hub_ready:
            await self._ensure_hub()

    # instances and history

    async def create_instance(self, state: InstanceState, start: Message) -> None:
        """Write the row, then send `start`. A new instance's row is inserted (its first checkpoint creates
        the sentinel, as the provider's does). An existing one is replaced: the messages and work items
        of the old instance that this process holds are dropped, a new execution starts in the sentinel
        (older episodes become stale), and the row is replaced with the generation one up."""
        await self._ready()
        instance_id = state.instance_id
        self._forget(instance_id)
        etag = rows.HubEtag(None, 0, 0)
        if not await self.instances.write(state, etag, only_new=True):
            queue = self.queues.control_queue(instance_id)
            existing, _ = await asyncio.gather(self.instances.row(instance_id), self.messaging.poll([queue]))
            await self.messaging.drop_instance(instance_id)
            sentinel = await self.history.reset(escape_key(instance_id), state.execution_id)
            etag = rows.HubEtag(sentinel, 0, int(existing.get("Generation") or 0) + 1 if existing else 0)
            await self.instances.write(state, etag)
        # the start event carries the row's generation, as the provider sets it (§4.2, §3.2)
        start = replace(start, event={**start.event, "Generation": etag.generation})
        self._executions[instance_id] = state.execution_id
        state.etag = etag
        self._remember(copy.copy(state), [])    # before the send: its episode may start before it returns
        await self.messaging.send([Outgoing(self.queues.control_queue(instance_id),
                                            envelopes.message_envelope(start))])

    async def get_instance(self, instance_id: str) -> InstanceState | None:
        """The row, whose etag is the sentinel's as of the row's write (one read, as the provider's status
        queries). An episode needs the sentinel's current etag (the row lags it between a commit and the
        row's write, for good if the writer died there): in an episode of this instance, what this
        process checkpointed last, without reading (see `_Known`), else the row and the sentinel."""
        if _EPISODE.get() != instance_id:
            return await self.instances.read(instance_id)
        known = self._known.get(instance_id)
        checked = False  # `sentinel` read already (it moved): only the row is left to read
        if known is not None and (known.used or self._shared()):
            sentinel = await self.history.sentinel(escape_key(instance_id))
            if (sentinel.metadata["etag"] if sentinel is not None else None) != _sentinel_etag(known.state):
                self._moved_seen = time.monotonic()
                self._forget(instance_id)
                known, checked = None, True
        if known is not None:
            known.used = True
            self._known.move_to_end(instance_id)
            return copy.copy(known.state)
        if checked:
            state = await self.instances.read(instance_id)
        else:
            state, sentinel = await asyncio.gather(self.instances.read(instance_id),
                                                   self.history.sentinel(escape_key(instance_id)))
        if state is None:
            return None
        generation = state.etag.generation if isinstance(state.etag, rows.HubEtag) else 0
        if sentinel is None:
            state.etag = rows.HubEtag(None, 0, generation)
        else:
            state.etag = rows.HubEtag(sentinel.metadata["etag"], rows.sentinel_count(sentinel), generation)
        self._remember(copy.copy(state), None)
        return state

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        known = self._known.get(instance_id) if _EPISODE.get() == instance_id else None
        if known is not None and known.history is not None:
            known.used = True
            return [dict(event) for event in known.history]
        key = escape_key(instance_id)
        loaded = await self.history.load(key)
        if loaded.outbox:
            await self._recover_outbox(key, loaded.sentinel, loaded.outbox)
        if known is not None and loaded.sentinel is not None \
                and isinstance(known.state.etag, rows.HubEtag) \
                and known.state.etag.sentinel == loaded.sentinel.metadata["etag"]:
            known.history = [dict(event) for event in loaded.events]   # the events of that state
        return loaded.events

    def _remember(self, state: InstanceState, history: list[dict[str, Any]] | None) -> None:
        self._known[state.instance_id] = _Known(state, history)
        self._known.move_to_end(state.instance_id)
        while len(self._known) > KNOWN_LIMIT:
            self._known.popitem(last=False)

    def _forget(self, instance_id: str) -> None:
        self._known.pop(instance_id, None)

    def _shared(self) -> bool:
        """Whether another process was seen on the hub lately (so what we checkpointed may be old)."""
        return time.monotonic() - max(self.messaging.foreign_seen, self._moved_seen) < SHARED_WINDOW

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceState], str | None]:
        return await self.instances.query(query)

    async def purge_instances(self, instance_ids: list[str]) -> int:
        existed = await asyncio.gather(*(self._purge(instance_id) for instance_id in instance_ids))
        return sum(existed)

    async def _purge(self, instance_id: str) -> bool:
        self._forget(instance_id)
        unswept = self._unswept.pop(instance_id, None)
        if unswept is not None:
            self._flushing.difference_update(unswept.rows)     # the purge deletes them
        if not self._hub_ready:
            return False
        await self.messaging.poll([self.queues.control_queue(instance_id)])
        await self.messaging.drop_instance(instance_id)
        self._executions[instance_id] = None
        existed = await self.instances.delete(instance_id)
        await self.history.purge(escape_key(instance_id))
        await self.blobs.delete_prefixes([f"{instance_id}/message-"])
        return existed

    async def delete_task_hub(self) -> None:
        """Delete every resource of the hub; a later write creates the hub again."""
        if self._services is None:
            return
        tables, _, _ = self._services
        names = self.names
        assert self._app_lease is not None
        await asyncio.gather(
            *(ignore(tables.delete_table(name), ResourceNotFoundError)
              for name in (names.history_table, names.instances_table, names.partitions_table)),
            self.queues.delete_queues(), self.blobs.delete_container(), self._app_lease.delete())
        self.messaging.clear()
        self._executions.clear()
        self._known.clear()
        self._unswept.clear()
        self._sweep_now.clear()
        self._flushing.clear()
        self._hub_ready = False

    # orchestration messages

    async def send_messages(self, messages: list[Message]) -> None:
        await self._ready()
        await self.messaging.send([Outgoing(self.queues.control_queue(message.instance_id),
                                            envelopes.message_envelope(message)) for message in messages])

    async def ready_instances(self, now: datetime, limit: int) -> list[str]:
        if not self._dispatching():
            return []
        self.messaging.holding = True     # this process dispatches orchestrations: it may keep its sends
        self.messaging.watermark = now
        stale = self.messaging.stale_queues(self.max_queue_polling_interval * STALE_SHARE)
        await self._reachability.poll(lambda: self._receive(now, stale), "polling the control queues")
        if not self._reachability.down and len(stale) == len(self.names.control_queues):
            self.messaging.prune_timers(now)
        return self.messaging.inbox.ready(now, limit)

    async def _receive(self, now: datetime, queues: list[str]) -> None:
        await self.messaging.promote(now)
        await self.messaging.poll(queues)

    async def pending_messages(self, instance_id: str, now: datetime) -> list[Message]:
        """The instance's visible messages. Its queue is read only when this process holds none of them:
        the engine asks right after `ready_instances` read the queues, and what arrived since then
        makes the instance ready again. Starts an episode of the instance in this task (`_Known`)."""
        _EPISODE.set(instance_id)
        if not self._dispatching():
            return []
        queue = self.queues.control_queue(instance_id)

        async def receive() -> None:
            await self.messaging.promote(now)
            if not self.messaging.inbox.visible(now, instance_id):
                await self.messaging.poll([queue])
        await self._reachability.poll(receive, "polling a control queue")
        return self.messaging.visible(now, instance_id)

    async def next_visible_time(self) -> datetime | None:
        """The earliest timer not yet visible at the `now` of the latest `ready_instances` call, among
        the timers this process sent or received."""
        return self.messaging.next_visible_time()

    async def checkpoint(self, cp: Checkpoint) -> None:
        """History (+ outbox) under the sentinel ETag, the row, the outbox, the consumed messages
        (the module docstring explains the order)."""
        await self._ready()
        key = escape_key(cp.instance_id)
        etag = cp.etag if isinstance(cp.etag, rows.HubEtag) else rows.HubEtag(None)
        outgoing = self._outgoing(cp)
        known = self._known.pop(cp.instance_id, None)
        sweep = self._unswept.pop(cp.instance_id, None)
        await self.messaging.encode(outgoing)
        try:
            committed = await self._commit(cp, key, etag, outgoing, sweep.rows if sweep else [])
        except BaseException as error:
            if isinstance(error, StaleCheckpointError):
                self._moved_seen = time.monotonic()
            if sweep is not None:
                self._defer_sweep(cp.instance_id, sweep)
            raise
        if sweep is not None:
            if committed.swept:
                self._flushing.difference_update(sweep.rows)
            else:
                self._defer_sweep(cp.instance_id, sweep)
        new_etag = rows.HubEtag(committed.sentinel_etag, committed.event_count, etag.generation)
        cp.state.etag = new_etag
        self._executions[cp.instance_id] = cp.state.execution_id
        defer = None if cp.state.runtime_status.is_terminal else cp.instance_id
        await self._after_commit(cp, key, new_etag, outgoing, committed.outbox_rows, defer)
        if cp.replace_history:
            history: list[dict[str, Any]] | None = []
        elif known is not None and known.history is not None and known.state.etag == etag:
            history = known.history
        else:
            history = None
        if history is not None:
            history = history + [dict(event) for event in cp.new_events]
        self._remember(copy.copy(cp.state), history)

    async def _commit(self, cp: Checkpoint, key: str, etag: rows.HubEtag, outgoing: list[Outgoing],
                      sweep: list[str]) -> Committed:
        """The History transaction, tried again while storage is unreachable. An attempt whose answer was
        lost may have been applied: the sentinel carries this checkpoint's id exactly when it was (the
        rows to sweep then count as not swept; the sweeper finds them gone)."""
        checkpoint_id = secrets.token_hex(8)
        outbox = [[entry.queue, entry.body, entry.blob] for entry in outgoing]
        start = 0 if cp.replace_history else etag.event_count
        attempted = False

        async def attempt() -> Committed:
            nonlocal attempted
            if attempted and (applied := await self.history.committed(key, checkpoint_id, outbox)) is not None:
                return applied
            attempted = True
            return await self.history.commit(cp.instance_id, key, etag, cp.state.execution_id, cp.new_events,
                                             start, outbox, checkpoint_id, sweep)
        try:
            return await until_reachable(attempt, f"checkpointing instance '{cp.instance_id}'")
        except BaseException:
            await self._discard_blobs([entry.blob for entry in outgoing if entry.blob])
            raise

    async def _after_commit(self, cp: Checkpoint, key: str, etag: rows.HubEtag, outgoing: list[Outgoing],
                            outbox_rows: list[str], defer: str | None) -> None:
        """Everything after the commit is idempotent and must happen: each step waits out an outage."""
        what = f"completing the checkpoint of instance '{cp.instance_id}'"
        await until_reachable(lambda: self.instances.write(cp.state, etag), what)
        await until_reachable(lambda: self._flush(key, outgoing, outbox_rows, defer), what)
        await until_reachable(lambda: self.messaging.consume(cp.consumed), what)
        if cp.canceled_timers:
            await until_reachable(lambda: self._cancel_timers(cp.instance_id, cp.canceled_timers), what)

    async def _cancel_timers(self, instance_id: str, timer_ids: list[int]) -> None:
        await self.messaging.poll([self.queues.control_queue(instance_id)])
        await self.messaging.cancel_timers(instance_id, timer_ids)

    async def _discard_blobs(self, names: list[str]) -> None:
        """Best effort: a large-message blob no message points to is only wasted space."""
        try:
            await self.blobs.delete(names)
        except Exception as error:
            if not is_transient(error):
                raise

    def _outgoing(self, cp: Checkpoint) -> list[Outgoing]:
        """The checkpoint's messages and work items, less timers it cancels in the same breath."""
        canceled = set(cp.canceled_timers)
        outgoing = [Outgoing(self.queues.control_queue(message.instance_id), envelopes.message_envelope(message))
                    for message in cp.messages]
        outgoing = [entry for entry in outgoing if entry.timer_of(cp.instance_id) not in canceled]
        return outgoing + [Outgoing(self.names.workitems_queue, envelopes.activity_envelope(item))
                           for item in cp.activities]

    async def _flush(self, key: str, outgoing: list[Outgoing], outbox_rows: list[str],
                     defer: str | None = None) -> None:
        """Send the outbox, then delete its rows: at once, or (`defer`: the instance, which is likely to
        checkpoint again soon) in its next checkpoint's transaction or else by the sweeper."""
        self._flushing.update(outbox_rows)
        try:
            await self.messaging.send(outgoing)
            if defer is not None and outbox_rows:
                self._defer_sweep(defer, _Unswept(key, list(outbox_rows), time.monotonic()))
                return
            await self.history.delete_rows(key, outbox_rows)
        except BaseException:
            self._flushing.difference_update(outbox_rows)
            raise
        self._flushing.difference_update(outbox_rows)

    def _defer_sweep(self, instance_id: str, unswept: _Unswept) -> None:
        """Outbox rows already sent (kept in `_flushing`, so recovery leaves them alone) to delete later."""
        held = self._unswept.get(instance_id)
        if held is not None:
            unswept = _Unswept(unswept.key, held.rows + [row for row in unswept.rows if row not in held.rows],
                               min(held.since, unswept.since))
        self._unswept[instance_id] = unswept

    async def _sweep(self, older_than: float) -> None:
        """Delete the deferred outbox rows sent more than `older_than` seconds ago (all with 0)."""
        deadline = time.monotonic() - older_than
        due, self._sweep_now = self._sweep_now, []
        for instance_id, unswept in list(self._unswept.items()):
            if unswept.since <= deadline:
                due.append(self._unswept.pop(instance_id))
        results = await asyncio.gather(*(self.history.delete_rows(entry.key, entry.rows) for entry in due),
                                       return_exceptions=True)
        for entry, result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                self._sweep_now.append(entry)    # the next round tries again
            else:
                self._flushing.difference_update(entry.rows)
        failed = next((result for result in results if isinstance(result, BaseException)), None)
        if failed is not None:
            raise failed

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self._sweep(OUTBOX_SWEEP_AGE)
            except Exception as error:  # storage away: the rows wait for the next round
                log.warning("could not delete sent outbox rows: %s", describe(error))

    async def _recover_outbox(self, key: str, sentinel: TableEntity | None, outbox: list[TableEntity]) -> None:
        """Send the last checkpoint's outbox if its writer died before sending it; drop older ones."""
        current = str(sentinel.get("FuncemuOutboxId") or "") if sentinel is not None else ""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=OUTBOX_RECOVERY_AGE)
        stale: list[TableEntity] = []
        resend: list[TableEntity] = []
        for row in outbox:
            written = row.metadata.get("timestamp")
            if row["RowKey"] in self._flushing or (written is not None and written > cutoff):
                continue
            (resend if rows.outbox_id_of(row) == current else stale).append(row)
        await self.history.delete_rows(key, [row["RowKey"] for row in stale])
        if resend:
            outgoing = [await self._reopen(entry) for row in resend for entry in rows.outbox_entries(row)]
            await self._flush(key, outgoing, [row["RowKey"] for row in resend])

    async def _reopen(self, entry: list[Any]) -> Outgoing:
        queue, body, blob = entry
        envelope = envelopes.loads(await self.blobs.download(blob) if blob else body)
        return Outgoing(queue, envelope, body, blob)

    # activities

    async def fetch_activities(self, limit: int) -> list[ActivityItem]:
        if not self._dispatching() or limit <= 0:
            return []
        every = self.max_queue_polling_interval * STALE_SHARE
        return await self._reachability.poll(lambda: self.work_items.fetch(limit, every),
                                             "polling the work items") or []

    async def complete_activities(self, done: list[tuple[ActivityItem, Message]]) -> None:
        """The items completed concurrently: queue messages cannot share a request."""
        await self.work_items.complete_many(done)

    async def release_activity_leases(self) -> None:
        """Work items this process leased become visible again; those a dead process leased come back
        when their lease runs out."""
        await self.messaging.release_items()


def _transport() -> AioHttpTransport:
    """The SDKs' aiohttp transport, reading proxy settings from the environment only when some are set:
    otherwise aiohttp's `trust_env` costs two thread-pool hops per request (.netrc and proxy lookups),
    about a third of the client's CPU time per storage call. Requests time out (CONNECT_TIMEOUT,
    READ_TIMEOUT)."""
    return AioHttpTransport(use_env_settings=any(os.environ.get(name) for name in _PROXY_VARIABLES),
                            connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "WS_PROXY", "WSS_PROXY", "ALL_PROXY",
                    "http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy")


def _sentinel_etag(state: InstanceState) -> str | None:
    return state.etag.sentinel if isinstance(state.etag, rows.HubEtag) else None
