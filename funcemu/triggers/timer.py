"""Timer trigger listener (§5.1, §3.9): schedule, runOnStartup, past-due detection, useMonitor.

With useMonitor the schedule status lives in blob
`azure-webjobs-hosts/timers/<hostId>/Host.Functions.<name>/status` as `{"Last","Next","LastUpdated"}`,
which is how a restarted host knows it missed an occurrence (it then fires once with IsPastDue).
Invocations of one timer never overlap: the next occurrence is computed after a run ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.functions import meta
from dateutil.parser import isoparse

from funcemu.app import FunctionSpec
from funcemu.invoke import HOST_API_REASON
from funcemu.jsontext import compact
from funcemu.triggers.convert import decode_input
from funcemu.triggers.schedule import Schedule, occurrences
from funcemu.triggers.storage import StorageAccount

log = logging.getLogger("funcemu.triggers.timer")
MONITOR_CONTAINER = "azure-webjobs-hosts"
MAX_SLEEP = 60.0  # re-read the wall clock at least this often (clock changes, suspend)


def timer_value(spec: FunctionSpec, schedule: Schedule, status: dict[str, str] | None, past_due: bool) -> Any:
    """`func.TimerRequest` from the TimerInfo JSON the host sends (or the raw JSON for a str parameter)."""
    info = {"Schedule": {"AdjustForDST": schedule.adjust_for_dst}, "ScheduleStatus": status, "IsPastDue": past_due}
    return decode_input(spec, spec.trigger, meta.Datum(compact(info), "json"), {})


def occurrence_text(moment: datetime, zone: tzinfo) -> str:
    """One line of the "next 5 occurrences" log, as TimerInfo.FormatNextOccurrences writes it
    (`MM'/'dd'/'yyyy HH':'mm':'ssK`): UTC alone when the zone is UTC, else `local (utc)`."""
    utc = moment.astimezone(timezone.utc).strftime("%m/%d/%Y %H:%M:%SZ")
    if _is_utc(zone, moment):
        return utc
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local.strftime('%m/%d/%Y %H:%M:%S')}{offset[:3]}:{offset[3:]} ({utc})"


def _is_utc(zone: tzinfo, moment: datetime) -> bool:
    """TimeZoneInfo.Local.HasSameRules(Utc): no offset now nor half a year away."""
    return all(when.astimezone(zone).utcoffset() == timedelta(0) for when in (moment, moment + timedelta(days=182)))


def to_text(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "0001-01-01T00:00:00"


def from_text(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-01-01"):
        return None
    value = isoparse(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class ScheduleMonitor:
    """The status blob of one timer function."""

    def __init__(self, account: StorageAccount, host_id: str, function: str) -> None:
        self.account = account
        self.blob_name = f"timers/{host_id}/Host.Functions.{function}/status"

    async def get(self) -> dict[str, str] | None:
        blob = self.account.container(MONITOR_CONTAINER).get_blob_client(self.blob_name)
        try:
            stream = await blob.download_blob()
            data = json.loads(await stream.readall())
        except (ResourceNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    async def put(self, status: dict[str, str]) -> None:
        container = await self.account.ensure_container(MONITOR_CONTAINER)
        await container.get_blob_client(self.blob_name).upload_blob(compact(status), overwrite=True)


class TimerListener:
    def __init__(self, host: Any, spec: FunctionSpec, schedule: Schedule, zone: tzinfo,
                 monitor: ScheduleMonitor | None, run_on_startup: bool) -> None:
        self.host, self.spec, self.schedule, self.zone = host, spec, schedule, zone
        self.monitor = monitor
        self.run_on_startup = run_on_startup
        self.status: dict[str, str] | None = None
        self._task: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def local(self, moment: datetime | None) -> str:
        """A moment as the host writes it: local time with its offset."""
        return to_text(moment.astimezone(self.zone) if moment else None)

    async def start(self) -> None:
        upcoming = "".join("\n" + occurrence_text(t, self.zone) for t in occurrences(self.schedule, self.now(), 5))
        log.info("The next 5 occurrences of the '%s' schedule (%s) will be:%s", self.spec.name,
                 self.schedule.describe(), upcoming)
        past_due = await self._check_past_due() if self.monitor else timedelta(0)
        self._task = asyncio.create_task(self._run(past_due > timedelta(0)), name=f"timer {self.spec.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _check_past_due(self) -> timedelta:
        """How late the recorded next occurrence is; a changed schedule is recomputed, not past due."""
        assert self.monitor is not None
        now = self.now()
        status = await self.monitor.get()
        recorded = from_text((status or {}).get("Next"))
        if status is None or recorded is None:
            await self._record(None, now)
            return timedelta(0)
        self.status = status
        updated = from_text(status.get("LastUpdated")) or min(recorded, now)
        if self.schedule.next_after(updated) != recorded:
            await self._record(from_text(status.get("Last")), now)
            return timedelta(0)
        return now - recorded if now > recorded else timedelta(0)

    async def _record(self, last: datetime | None, now: datetime) -> None:
        self.status = {"Last": self.local(last), "Next": self.local(self.schedule.next_after(now)),
                       "LastUpdated": self.local(now)}
        if self.monitor is not None:
            await self.monitor.put(self.status)

    async def _run(self, past_due: bool) -> None:
        if past_due or self.run_on_startup:
            await self.fire(self.now(), past_due=past_due)
        while True:
            due = self.schedule.next_after(self.now())
            await self._sleep_until(due)
            await self.fire(due, past_due=False)

    async def _sleep_until(self, due: datetime) -> None:
        while (left := (due - self.now()).total_seconds()) > 0:
            await asyncio.sleep(min(left, MAX_SLEEP))

    async def fire(self, due: datetime, *, past_due: bool) -> None:
        """One invocation; failures are logged by the invoker and never stop the schedule."""
        value = timer_value(self.spec, self.schedule, self.status if self.monitor else None, past_due)
        try:
            await self.host.call(self.spec, self.spec.trigger["name"], value, {},
                                 reason=f"Timer fired at {self.local(self.now())}")
        except Exception:  # a binding failure, not the function's own (that is in the result)
            log.exception("Timer function '%s' could not be invoked", self.spec.name)
        if self.monitor is not None:
            try:
                await self._record(due, self.now())
            except Exception:
                log.exception("Timer function '%s': could not update the schedule status blob %s",
                              self.spec.name, self.monitor.blob_name)


async def invoke_timer_by_admin(host: Any, spec: FunctionSpec, schedule: Schedule) -> None:
    """`POST /admin/functions/<timer>`: a fresh TimerInfo (input ignored, not past due, no status)."""
    value = timer_value(spec, schedule, None, past_due=False)
    await host.call(spec, spec.trigger["name"], value, {}, reason=HOST_API_REASON)
