"""Bringing up timer, queue and blob triggers and the storage bindings, all checked before anything runs.

Order: resolve every storage binding (app settings, connection settings, names, schedules), probe each
storage endpoint once, register the binding providers and admin invokers, then start the listeners.
A configuration problem (a missing setting, a bad schedule, name or option) raises a FuncemuError naming
the function and the setting before anything has started. Unreachable storage does not stop the host,
as in the real one: a listener that needs it logs why it cannot start and is retried in the background
(`listeners.py`), and other bindings on it get one warning (they fail when invoked until it answers).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from funcemu.app import FunctionSpec, is_disabled
from funcemu.triggers.blob import BlobPattern, BlobQueueProcessor, BlobTrigger, host_queue_name
from funcemu.triggers.expressions import resolve_settings
from funcemu.triggers.inputs import InputProviders
from funcemu.triggers.listeners import Listener, Need
from funcemu.triggers.outputs import OutputWriters
from funcemu.triggers.polling import QueueOptions
from funcemu.triggers.queue import QueueTrigger, queue_name
from funcemu.triggers.schedule import Schedule, fires_more_than_once_a_minute, local_zone, parse_schedule
from funcemu.triggers.storage import Accounts, StorageAccount, StorageConnectionError, Watchers
from funcemu.triggers.timer import ScheduleMonitor, TimerListener, invoke_timer_by_admin

log = logging.getLogger("funcemu.triggers")
TRIGGER_TYPES = ("timerTrigger", "queueTrigger", "blobTrigger")
SERVICE_OF = {"queueTrigger": "queue", "queue": "queue", "blobTrigger": "blob", "blob": "blob", "table": "table"}
AdminRunner = Callable[[str | None], Awaitable[None]]


class TriggerStartup:
    def __init__(self, host: Any, environ: Mapping[str, str] | None = None) -> None:
        self.host = host
        self.environ = os.environ if environ is None else environ
        self.accounts = Accounts(self.environ)
        self.watchers = Watchers()
        self.binding_needs: list[tuple[str, Need]] = []   # (function, need) of bindings other than triggers
        self.admin: dict[str, AdminRunner] = {}
        self.listeners: list[Listener] = []
        self.cleanups: list[Callable[[], Awaitable[None]]] = []
        self._options: QueueOptions | None = None
        self._blob_queue: BlobQueueProcessor | None = None

    @property
    def options(self) -> QueueOptions:
        if self._options is None:
            self._options = QueueOptions.from_host_json(self.host.config.host_json)
        return self._options

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        specs = [s for s in self.host.indexed.functions if self._uses_storage(s)]
        if not specs:
            return
        stack.push_async_callback(self.accounts.close)
        for spec in specs:
            self._check_bindings(spec)
            if spec.trigger_type in TRIGGER_TYPES:
                self._prepare_trigger(spec)
        await self.accounts.probe_all((n.account, n.service) for n in self._all_needs())
        self._register()
        await self._warn_about_bindings()
        for cleanup in self.cleanups:
            stack.push_async_callback(cleanup)
        for listener in self.listeners:
            await listener.open(stack, self.accounts.problem)

    @staticmethod
    def _uses_storage(spec: FunctionSpec) -> bool:
        return spec.trigger_type in TRIGGER_TYPES or any(b["type"] in SERVICE_OF for b in spec.bindings)

    def _check_bindings(self, spec: FunctionSpec) -> None:
        """Every storage binding: its %settings% exist and its connection resolves."""
        for binding in spec.bindings:
            service = SERVICE_OF.get(binding["type"])
            if service is None:
                continue
            resolved = resolve_settings(spec.name, binding, self.environ)
            account = self.accounts.for_binding(spec.name, binding)
            if binding["type"] not in TRIGGER_TYPES:   # a trigger's storage belongs to its listener
                self.binding_needs.append((spec.name, Need(binding["name"], account, service)))
            if binding["type"] == "queue" and "{" not in str(resolved.get("queueName", "{")):
                queue_name(spec.name, binding, str(resolved["queueName"]))

    def _all_needs(self) -> list[Need]:
        return [need for _, need in self.binding_needs] + [n for listener in self.listeners for n in listener.needs]

    async def _warn_about_bindings(self) -> None:
        """One warning per storage endpoint that input or output bindings use and that does not answer."""
        users: dict[str, list[str]] = {}
        for function, need in self.binding_needs:
            problem = await self.accounts.problem(need.account, need.service)
            if problem is not None:
                users.setdefault(problem, []).append(f"'{function}' (binding '{need.binding}')")
        for problem, bindings in users.items():
            if len(bindings) == 1:
                log.warning("Function %s: %s Invocations that use this binding fail until it answers.",
                            bindings[0], problem)
            else:
                log.warning("Functions %s and %s: %s Invocations that use these bindings fail until it answers.",
                            ", ".join(bindings[:-1]), bindings[-1], problem)

    def _host_account(self, spec: FunctionSpec, why: str) -> StorageAccount:
        account = self.accounts.default()
        if account is None:
            raise StorageConnectionError(spec.name, spec.trigger["name"], f"{why} needs the AzureWebJobsStorage "
                                         "setting (UseDevelopmentStorage=true for Azurite), which does not exist.")
        return account

    def _prepare_trigger(self, spec: FunctionSpec) -> None:
        trigger = resolve_settings(spec.name, spec.trigger, self.environ)
        prepare = {"timerTrigger": self._prepare_timer, "queueTrigger": self._prepare_queue,
                   "blobTrigger": self._prepare_blob}[spec.trigger_type]
        prepare(spec, trigger)

    def _prepare_timer(self, spec: FunctionSpec, trigger: dict[str, Any]) -> None:
        zone = local_zone(self.environ)
        schedule = parse_schedule(str(trigger.get("schedule", "")), zone, spec.name)
        self.admin[spec.name] = lambda raw: invoke_timer_by_admin(self.host, spec, schedule)
        monitor = self._monitor(spec, trigger, schedule, zone)
        listener = TimerListener(self.host, spec, schedule, zone, monitor, bool(trigger.get("runOnStartup")))
        needs = [] if monitor is None else [Need(f"{spec.trigger['name']} (useMonitor; use_monitor=False turns "
                                                 "it off)", monitor.account, "blob")]
        self._add_listener(spec, needs, listener.start, listener.stop)

    def _monitor(self, spec: FunctionSpec, trigger: dict[str, Any], schedule: Schedule,
                 zone: Any) -> ScheduleMonitor | None:
        if trigger.get("useMonitor", True) is False or fires_more_than_once_a_minute(schedule, datetime.now(zone)):
            return None
        # The host's listener fails to start without it ("Could not create BlobContainerClient for
        # ScheduleMonitor"); as for other storage triggers with a missing setting, that stops funcemu.
        account = self._host_account(spec, "The timer's schedule monitor (useMonitor; use_monitor=False turns it "
                                           "off)")
        return ScheduleMonitor(account, self.host.host_id, spec.name)

    def _prepare_queue(self, spec: FunctionSpec, trigger: dict[str, Any]) -> None:
        name = queue_name(spec.name, trigger, str(trigger.get("queueName", "")))
        account = self.accounts.for_binding(spec.name, spec.trigger)
        queue = QueueTrigger(self.host, spec, account, name, self.options, self.watchers)
        self.admin[spec.name] = queue.invoke_by_admin
        needs = [Need(spec.trigger["name"], account, "queue")]
        self._add_listener(spec, needs, _sync_start(queue.listener.start), queue.listener.stop)

    def _prepare_blob(self, spec: FunctionSpec, trigger: dict[str, Any]) -> None:
        pattern = BlobPattern(spec.name, str(trigger.get("path", "")))
        if str(trigger.get("source", "")).lower() == "eventgrid":
            log.warning("Function '%s': source EventGrid does not scan the container; it runs for the Event Grid "
                        "events posted to /runtime/webhooks/blobs?functionName=Host.Functions.%s", spec.name,
                        spec.name)
        host_account = self._host_account(spec, "The blob trigger (receipts and its host queue)")
        processor = self._blob_processor(host_account)
        account = self.accounts.for_binding(spec.name, spec.trigger)
        blob = BlobTrigger(self.host, spec, pattern, account, processor, self.watchers)
        processor.add(blob)
        self.admin[spec.name] = blob.invoke_by_admin
        needs = [Need(spec.trigger["name"], account, "blob"),
                 Need("AzureWebJobsStorage (blob receipts)", host_account, "blob"),
                 Need("AzureWebJobsStorage (blob trigger queue)", host_account, "queue")]

        async def start() -> None:
            processor.start()   # the shared host queue listens once the first blob trigger does
            blob.start()
        self._add_listener(spec, needs, start, blob.stop)

    def _blob_processor(self, host_account: StorageAccount) -> BlobQueueProcessor:
        if self._blob_queue is None:
            name = host_queue_name(self.host.host_id)
            self._blob_queue = BlobQueueProcessor(host_account, name, self.options, self.watchers)
            self.cleanups.append(self._blob_queue.listener.stop)
            self.host.blob_queue = self._blob_queue  # for the Event Grid webhook (blob.event_grid_webhook)
        return self._blob_queue

    def _add_listener(self, spec: FunctionSpec, needs: list[Need], start: Callable[[], Awaitable[None]],
                      stop: Callable[[], Awaitable[None]]) -> None:
        if is_disabled(spec.name, self.environ):
            log.info("Function '%s' is disabled: its trigger does not listen.", spec.name)
            return
        self.listeners.append(Listener(spec.name, needs, start, stop))

    def _register(self) -> None:
        writers = OutputWriters(self.accounts, self.watchers, self._encoding(), self.environ)
        providers = InputProviders(self.accounts, self.environ)
        bindings = self.host.bindings
        bindings.add_output("queue", writers.queue)
        bindings.add_output("blob", writers.blob)
        bindings.add_output("table", writers.table)
        bindings.add_input("blob", providers.blob)
        bindings.add_input("table", providers.table)
        invokers = getattr(self.host, "admin_invokers", None)
        if invokers is None:
            invokers = self.host.admin_invokers = {}
        for trigger_type in TRIGGER_TYPES:
            invokers[trigger_type] = self.invoke_by_admin

    def _encoding(self) -> str:
        uses_queues = any(b["type"] in ("queue", "queueTrigger", "blobTrigger")
                          for s in self.host.indexed.functions for b in s.bindings)
        return self.options.message_encoding if uses_queues else "base64"

    async def invoke_by_admin(self, spec: FunctionSpec, raw_input: str | None) -> None:
        runner = self.admin.get(spec.name)
        if runner is None:
            log.error("Function '%s' cannot be invoked through the admin API.", spec.name)
            return
        await runner(raw_input)


def _sync_start(start: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        start()
    return run
