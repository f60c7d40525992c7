"""The durable dispatcher: event driven, one episode per instance at a time, all pending messages at once.

A message for an instance wakes the orchestration loop at once (no polling in one process). The loop
hands every ready instance to `Episodes.run`, which applies all its visible messages in one replay
episode and checkpoints atomically. Activities run from their own loop under their own limit.
This module never imports aiohttp: `durable/api.py` is the HTTP face.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from funcemu.durable import history as h
from funcemu.durable.activities import activity_failure
from funcemu.durable.clock import Clock, VirtualClock
from funcemu.durable.pacing import EpisodePacer
from funcemu.durable.registry import DurableRegistry
from funcemu.durable.store.base import (
    ActivityItem,
    InstanceQuery,
    InstanceState,
    Message,
    RuntimeStatus,
    Store,
)
from funcemu.durable.worker import OrchestratorProcess, OrchestratorProcessError
from funcemu.errors import FuncemuError

log = logging.getLogger("funcemu.durable")
MAX_INSTANCE_ID_LENGTH = 256
RETRY_FIRST_DELAY, RETRY_MAX_DELAY = 0.1, 5.0  # seconds between attempts to write activity results
ActivityRunner = Callable[[ActivityItem], Awaitable[Message]]


class EngineError(FuncemuError):
    """A request the engine refuses; `api.py` maps subclasses to status codes."""


class UnknownOrchestratorError(EngineError):
    pass


class InstanceNotFoundError(EngineError):
    pass


class InvalidStateError(EngineError):
    """The operation is not allowed in the instance's current status (410 or 500, by operation)."""


def validate_instance_id(instance_id: str) -> None:
    """The host's id rules (`DurableClient.StartNewAsync`), with its texts; a ValueError is its
    ArgumentException (400). The first two pass their arguments to `ArgumentException` in swapped
    order, hence the "instanceId (Parameter '...')" message."""
    if instance_id.startswith("@"):
        raise ValueError("instanceId (Parameter 'Orchestration instance ids must not start with @.')")
    if any(c in "/\\?#" or unicodedata.category(c) == "Cc" for c in instance_id):
        raise ValueError("instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, "
                         "or control characters.')")
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise ValueError(f"Instance ID lengths must not exceed {MAX_INSTANCE_ID_LENGTH} characters.")


class Engine:
    def __init__(self, store: Store, clock: Clock, registry: DurableRegistry, hub_name: str,
                 run_activity: ActivityRunner, *, max_activities: int = 20, max_orchestrations: int = 20,
                 poll_interval: float | None = None) -> None:
        from funcemu.durable.episodes import Episodes

        self.store, self.clock, self.registry, self.hub_name = store, clock, registry, hub_name
        self.run_activity = run_activity
        self.max_activities, self.max_orchestrations = max_activities, max_orchestrations
        self.poll_interval = poll_interval
        self.episodes = Episodes(self)
        self.orchestrator_process: OrchestratorProcess | None = None  # None: handlers run in this process
        self.pacer = EpisodePacer()
        self._paced: set[str] = set()
        self._wake = asyncio.Event()
        self._activity_wake = asyncio.Event()
        # True from the moment activity work may be queued until the activity loop has drained it:
        # the virtual clock must not jump between a checkpoint and the fetch of its activities.
        self._activities_maybe_pending = True
        self._changed: dict[str, asyncio.Event] = {}
        self._running_instances: dict[str, asyncio.Task[None]] = {}
        self._running_activities: set[asyncio.Task[None]] = set()
        # activity results waiting for the next `complete_activities` write: one write per loop turn
        self._completions: list[tuple[ActivityItem, Message, asyncio.Future[None]]] = []
        self._completion_writes: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self.errors: list[BaseException] = []

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.release_activity_leases()
        self._loops = [asyncio.create_task(self._orchestration_loop(), name="funcemu-orchestrations"),
                       asyncio.create_task(self._activity_loop(), name="funcemu-activities")]

    async def stop(self) -> None:
        tasks = [*self._loops, *self._running_instances.values(), *self._running_activities,
                 *self._completion_writes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def now(self) -> datetime:
        return self.clock.now()

    def wake(self) -> None:
        self._wake.set()

    def wake_activities(self) -> None:
        self._activities_maybe_pending = True
        self._activity_wake.set()

    def notify_changed(self, instance_id: str) -> None:
        event = self._changed.pop(instance_id, None)
        if event is not None:
            event.set()

    @property
    def idle(self) -> bool:
        return not self._running_instances and not self._running_activities and not self._activities_maybe_pending

    # ---- loops --------------------------------------------------------------------------------
    async def _orchestration_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._dispatch_ready()
                timeout = await self._idle_timeout()
            except Exception as exc:  # a store failure must not kill the loop; retry shortly
                log.exception("durable dispatcher error")
                self.errors.append(exc)
                timeout = 1.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def _dispatch_ready(self) -> None:
        free = self.max_orchestrations - len(self._running_instances)
        if free <= 0:
            return
        ready = await self.store.ready_instances(self.now(), free + len(self._running_instances))
        loop = asyncio.get_running_loop()
        for instance_id in ready:
            if instance_id in self._running_instances or free <= 0:
                continue
            wait = self.pacer.delay(instance_id, loop.time())
            if wait > 0:
                self._wake_later(instance_id, wait)
                continue
            free -= 1
            task = asyncio.create_task(self._run_instance(instance_id))
            self._running_instances[instance_id] = task

    def _wake_later(self, instance_id: str, delay: float) -> None:
        if instance_id not in self._paced:
            self._paced.add(instance_id)
            asyncio.get_running_loop().call_later(delay, self._paced_wake, instance_id)

    def _paced_wake(self, instance_id: str) -> None:
        self._paced.discard(instance_id)
        self._wake.set()

    async def _run_instance(self, instance_id: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self.episodes.run(instance_id)
            self.pacer.episode_done(instance_id, loop.time() - started, loop.time())
        except asyncio.CancelledError:
            raise
        except OrchestratorProcessError as exc:  # nothing was written: its messages run again
            log.error("instance '%s': %s; the episode runs again", instance_id, exc)
        except Exception as exc:
            log.exception("episode of instance '%s' failed", instance_id)
            self.errors.append(exc)
        finally:
            self._running_instances.pop(instance_id, None)
            self._wake.set()

    async def _idle_timeout(self) -> float | None:
        """How long to sleep: until the next timer, jumping virtual time when nothing else can run."""
        next_time = await self.store.next_visible_time()
        timeout = None if next_time is None else self.clock.seconds_until(next_time)
        if next_time is not None and self.idle and isinstance(self.clock, VirtualClock) and self.clock.auto_skip:
            if not await self.store.ready_instances(self.now(), 1):
                self.clock.jump_to(next_time)
                timeout = 0.0
        if self.poll_interval is not None:
            timeout = self.poll_interval if timeout is None else min(timeout, self.poll_interval)
        return timeout

    async def _activity_loop(self) -> None:
        while True:
            self._activity_wake.clear()
            free = self.max_activities - len(self._running_activities)
            if free > 0:
                self._activities_maybe_pending = False
            try:
                items = await self.store.fetch_activities(free) if free > 0 else []
                if free > 0 and len(items) == free:
                    self._activities_maybe_pending = True
            except Exception as exc:
                log.exception("activity dispatcher error")
                self.errors.append(exc)
                self._activities_maybe_pending = True
                items = []
            for item in items:
                task = asyncio.create_task(self._run_activity(item))
                self._running_activities.add(task)
            timeout = self.poll_interval if free > 0 and not items else None
            if items and len(items) == free:
                continue
            try:
                await asyncio.wait_for(self._activity_wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def _run_activity(self, item: ActivityItem) -> None:
        """Run the item and queue its result. Whatever fails in the run becomes the task's TaskFailed, so
        the orchestration always hears back; writing the result is retried by `_write_completions`."""
        try:
            try:
                result = await self.run_activity(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("activity '%s' of instance '%s' failed", item.name, item.instance_id)
                result = activity_failure(item, self.now(), item.name, exc)
            await self._complete(item, result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("activity '%s' of instance '%s' could not complete", item.name, item.instance_id)
            self.errors.append(exc)
        finally:
            self.pacer.finished(item.instance_id)
            self._running_activities.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._activity_wake.set()
            self._wake.set()

    def _complete(self, item: ActivityItem, result: Message) -> asyncio.Future[None]:
        """Queue the result for this loop turn's `complete_activities` write; done once it is written.

        The first result of a turn starts the writer task, which runs in the next turn: every result
        that arrived meanwhile goes into the same write. No timer: a lone result waits one turn."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._completions:
            task = asyncio.create_task(self._write_completions(), name="funcemu-activity-results")
            self._completion_writes.add(task)
            task.add_done_callback(self._completion_writes.discard)
        self._completions.append((item, result, done))
        return done

    async def _write_completions(self) -> None:
        """Write the batch; a failed write is logged and tried again with back-off until it succeeds or
        the engine stops, so no result is lost (the activities wait; a stopped host runs them again).
        The Azure store gives back, itself, what it failed to complete for good: a retry finds those
        items no longer leased and passes over them, and they run again (at least once)."""
        batch = self._completions
        self._completions = []
        delay = RETRY_FIRST_DELAY
        while batch := [entry for entry in batch if not entry[2].done()]:  # done: its task was cancelled
            try:
                await self.store.complete_activities([(item, result) for item, result, _ in batch])
            except asyncio.CancelledError:
                for _, _, done in batch:
                    done.cancel()
                raise
            except Exception as exc:
                self.errors.append(exc)
                log.warning("could not write the results of %d activities (%s: %s); trying again in %.1f s",
                            len(batch), type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)
                continue
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)
            return

    # ---- public operations (the management API and the SDK client call these) ----------------
    def orchestrator_names(self) -> list[str]:
        return self.registry.orchestrator_names()

    async def start_new(self, name: str, instance_id: str | None, input_text: str | None) -> str:
        spec = self.registry.orchestrator(name)
        if spec is None:
            raise UnknownOrchestratorError(self.registry.unknown_orchestrator_message(name))
        instance_id = instance_id if instance_id is not None else uuid.uuid4().hex
        validate_instance_id(instance_id)
        await self._create(name, instance_id, input_text)  # the caller's spelling, as DTFx stores it
        return instance_id

    async def _create(self, name: str, instance_id: str, input_text: str | None) -> None:
        now = self.now()
        execution_id = uuid.uuid4().hex
        state = InstanceState(instance_id=instance_id, name=name, execution_id=execution_id,
                              runtime_status=RuntimeStatus.Pending, created_time=now, last_updated_time=now,
                              input=input_text)
        start = h.execution_started(now, name, instance_id, execution_id, input_text)
        await self.store.create_instance(state, Message(instance_id, start, execution_id))
        self.notify_changed(instance_id)
        self.wake()

    async def get_instance(self, instance_id: str) -> InstanceState | None:
        return await self.store.get_instance(instance_id)

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        return await self.store.get_history(instance_id)

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceState], str | None]:
        return await self.store.query_instances(query)

    async def purge(self, instance_ids: list[str]) -> int:
        return await self.store.purge_instances(instance_ids)

    async def _require(self, instance_id: str) -> InstanceState:
        state = await self.store.get_instance(instance_id)
        if state is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        return state

    async def _send(self, instance_id: str, event: dict[str, Any]) -> None:
        await self.store.send_messages([Message(instance_id, event)])
        self.wake()

    async def raise_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        state = await self._require(instance_id)
        if state.runtime_status.is_terminal:
            raise InvalidStateError(f"Instance with ID {instance_id} is gone: either completed or failed")
        await self._send(instance_id, h.event_raised(self.now(), name, input_text))

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        state = await self._require(instance_id)
        if state.runtime_status.is_terminal:
            raise InvalidStateError(f"Cannot terminate orchestration instance '{instance_id}' in the "
                                    f"{state.runtime_status.value} state.")
        await self._send(instance_id, h.execution_terminated(self.now(), reason))

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        state = await self._require(instance_id)
        if state.runtime_status.is_terminal:
            raise InvalidStateError(f"Instance '{instance_id}' is {state.runtime_status.value}.")
        if state.runtime_status == RuntimeStatus.Suspended:
            raise RuntimeError(f"Cannot suspend orchestration instance '{instance_id}' because it is already "
                               "suspended.")
        await self._send(instance_id, h.execution_suspended(self.now(), reason))

    async def resume(self, instance_id: str, reason: str | None) -> None:
        state = await self._require(instance_id)
        if state.runtime_status.is_terminal:
            raise InvalidStateError(f"Instance '{instance_id}' is {state.runtime_status.value}.")
        if state.runtime_status != RuntimeStatus.Suspended:
            raise RuntimeError(f"Cannot resume orchestration instance '{instance_id}' because it is not "
                               f"suspended (it is {state.runtime_status.value}).")
        await self._send(instance_id, h.execution_resumed(self.now(), reason))

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        state = await self._require(instance_id)
        if state.runtime_status in (RuntimeStatus.Completed, RuntimeStatus.Canceled, RuntimeStatus.Terminated):
            raise InvalidStateError("The rewind operation is only supported on failed orchestration instances.")
        if state.runtime_status != RuntimeStatus.Failed:
            raise RuntimeError("The rewind operation is only supported on failed orchestration instances.")
        await self.episodes.rewind(state, reason)
        self.wake()

    async def restart(self, instance_id: str, new_instance_id: bool) -> str:
        state = await self.store.get_instance(instance_id)
        if state is None:
            raise InstanceNotFoundError("InstanceId does not match a valid orchestration instance.")
        target = uuid.uuid4().hex if new_instance_id else instance_id
        await self._create(state.name, target, state.input)
        return target

    async def wait_for_completion(self, instance_id: str, timeout: float) -> InstanceState | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed.setdefault(instance_id, asyncio.Event())
            state = await self.store.get_instance(instance_id)
            remaining = deadline - loop.time()
            if state is None or state.runtime_status.is_terminal or remaining <= 0:
                return state
            # asyncio.wait, not wait_for: wait_for can swallow a cancellation that races the event.
            waiter = asyncio.ensure_future(event.wait())
            try:
                await asyncio.wait({waiter}, timeout=min(remaining, self.poll_interval or remaining))
            finally:
                waiter.cancel()

    async def signal_entity(self, name: str, key: str, operation: str, input_text: str | None) -> None:
        from funcemu.durable.entities import entity_instance_id, request_event

        if self.registry.entity(name) is None:
            raise ValueError(self.registry.unknown_entity_message(name))
        request = {"op": operation, "signal": True, "input": input_text, "id": str(uuid.uuid4())}
        await self._send(entity_instance_id(name, key), request_event(self.now(), request))

    async def read_entity(self, name: str, key: str) -> str | None:
        from funcemu.durable.entities import entity_instance_id

        state = await self.store.get_instance(entity_instance_id(name, key))
        return state.output if state is not None else None
