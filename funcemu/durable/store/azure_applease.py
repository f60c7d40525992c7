"""The app lease of an Azure Storage task hub (docs/azure-storage-taskhub.md §7.1), as DurableTask.AzureStorage's
`AppLeaseManager` takes it: a lease on the `{hub}-applease` container, LEASE_SECONDS long, renewed every
RENEW_INTERVAL, whose proposed id is derived from the AppName (`WEBSITE_SITE_NAME`, else `DTFX_APP_NAME`,
else ""). Every process of one app proposes the same id, and the Blob service accepts an Acquire that
proposes the active lease's id, so they all hold it; another app is refused (409) and tries again every
ACQUIRE_INTERVAL. `{hub}-appleaseinfo` records the holder: {"OwnerId": id, "DesiredSwapId": id or null};
an app named as DesiredSwapId takes the lease over with ChangeLease from OwnerId.

Differences from the provider: a renewal refused with 409/412 first tries to acquire the lease again at
once, because a process of this app that closes releases the lease it shares with the others (the
provider never releases; it lets the lease run out); only if that fails is the lease lost. A failed
ChangeLease falls back to an Acquire. Errors other than 409/412 (storage away) count as renewed, as in
the provider.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient

from funcemu.durable.store.azure_names import HubNames, fnv1a_32
from funcemu.durable.store.azure_outage import describe
from funcemu.durable.store.azure_queues import ignore

log = logging.getLogger("funcemu.durable")

LEASE_SECONDS = 60          # AppLeaseOptions.LeaseInterval
RENEW_INTERVAL = 25.0       # AppLeaseOptions.RenewInterval; also the retry after a storage error
ACQUIRE_INTERVAL = 300.0    # AppLeaseOptions.AcquireInterval: retry while another app holds the lease
_LOST = (409, 412)          # a renewal refused with these: the lease is no longer ours


def app_name(environ: Mapping[str, str] = os.environ) -> str:
    """The provider's AppName: WEBSITE_SITE_NAME, else DTFX_APP_NAME, else ""."""
    return environ.get("WEBSITE_SITE_NAME") or environ.get("DTFX_APP_NAME") or ""


def app_lease_id(name: str) -> str:
    """FNV-1a of the AppName as 4 little-endian bytes plus 12 zero bytes, read as a .NET GUID."""
    return str(uuid.UUID(bytes_le=struct.pack("<I", fnv1a_32(name)) + bytes(12)))


class AppLease:
    """`owned` tells whether this process may process the hub's queues. `start()` makes the first attempt
    and keeps the lease (renewing, or retrying while another app holds it) in a background task;
    `on_lost` runs when a held lease is lost."""

    def __init__(self, blobs: BlobServiceClient, names: HubNames, name: str,
                 on_lost: Callable[[], Awaitable[None]]) -> None:
        self.hub, self.app_name, self.lease_id = names.hub, name, app_lease_id(name)
        self.container = blobs.get_container_client(names.applease_container)
        self._info = self.container.get_blob_client(names.appleaseinfo_blob)
        self._on_lost = on_lost
        self.owned = False
        self.refused = False      # the latest attempt met another app's lease
        self._warned = False      # the refusal was logged (once until the lease is ours again)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    async def create(self) -> None:
        """The container and the `{}` info blob, as at hub creation (§1.4); existing ones are kept."""
        await ignore(self.container.create_container(), ResourceExistsError)
        await ignore(self._info.upload_blob(b"{}", overwrite=False), ResourceExistsError)

    async def start(self) -> None:
        await self.acquire()
        self._task = asyncio.create_task(self._keep())

    async def stop(self) -> None:
        """Stop renewing and release the lease (best effort: else it runs out after LEASE_SECONDS)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.owned:
            self.owned = False
            try:
                await BlobLeaseClient(self.container, lease_id=self.lease_id).release()
            except Exception as error:
                log.debug("could not release the app lease of task hub '%s': %s", self.hub, describe(error))

    async def acquire(self) -> bool:
        """One attempt (ChangeLease when the info names this app as DesiredSwapId, else Acquire)."""
        was_owned = self.owned
        info: dict[str, Any] = {}
        try:
            info = await self._read_info()
            owner = info.get("OwnerId")
            if not (info.get("DesiredSwapId") == self.lease_id and owner and owner != self.lease_id
                    and await self._change_from(str(owner))):
                await self.container.acquire_lease(lease_duration=LEASE_SECONDS, lease_id=self.lease_id)
                if owner != self.lease_id:
                    await self._write_info({"OwnerId": self.lease_id, "DesiredSwapId": info.get("DesiredSwapId")})
        except HttpResponseError as error:
            self.owned, self.refused = False, error.status_code == 409    # LeaseAlreadyPresent
            if self.refused and not self._warned:
                self._warned = True
                log.warning("task hub '%s' is held by another app: the lease on its container '%s' is not "
                            "this app's (AppName %r proposes lease id %s; the hub's appleaseinfo names %s). "
                            "This process will not run the hub's orchestrations, entities or activities "
                            "until it gets the lease (retrying every %g s); starting, querying and "
                            "signalling instances still work. Processes meant to share a hub need the same "
                            "WEBSITE_SITE_NAME (or DTFX_APP_NAME).", self.hub, self.container.container_name,
                            self.app_name, self.lease_id, info.get("OwnerId") or "no owner", ACQUIRE_INTERVAL)
            elif not self.refused:
                log.debug("could not take the app lease of task hub '%s': %s", self.hub, describe(error))
            return False
        except Exception as error:     # storage away: try again soon
            self.owned, self.refused = False, False
            log.debug("could not take the app lease of task hub '%s': %s", self.hub, describe(error))
            return False
        self.owned, self.refused = True, False
        if self._warned:
            log.warning("task hub '%s': this app (AppName %r) now holds the app lease; processing its queues",
                        self.hub, self.app_name)
        elif not was_owned:
            log.debug("task hub '%s': app lease %s taken", self.hub, self.lease_id)
        self._warned = False
        return True

    async def delete(self) -> None:
        """Delete the container with the hub, with this app's lease id when held, else after breaking
        whatever lease another app holds (§1.5: a deleted hub takes its lease with it)."""
        lease, self.owned = (self.lease_id if self.owned else None), False
        try:
            await self.container.delete_container(lease=lease)
            return
        except ResourceNotFoundError:
            return
        except HttpResponseError as error:
            if error.status_code not in _LOST:
                raise
        try:
            await BlobLeaseClient(self.container).break_lease(lease_break_period=0)
        except HttpResponseError as error:   # no lease left to break
            if error.status_code not in _LOST:
                raise
        await ignore(self.container.delete_container(), ResourceNotFoundError)

    async def _keep(self) -> None:
        while True:
            try:
                if self.owned:
                    await asyncio.sleep(RENEW_INTERVAL)
                    if self.owned and not await self._renew() and not await self.acquire():
                        await self._on_lost()
                else:
                    await asyncio.sleep(ACQUIRE_INTERVAL if self.refused else RENEW_INTERVAL)
                    if not self.owned:
                        await self.acquire()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("task hub '%s': app lease upkeep failed: %s", self.hub, describe(error))

    async def _renew(self) -> bool:
        """False when the service refuses (409/412: released, expired and taken, changed, broken)."""
        try:
            await BlobLeaseClient(self.container, lease_id=self.lease_id).renew()
        except HttpResponseError as error:
            if error.status_code in _LOST:
                self.owned = False
                log.info("task hub '%s': the app lease could not be renewed (%s)", self.hub, describe(error))
                return False
            log.debug("task hub '%s': app lease renewal failed: %s", self.hub, describe(error))
        except Exception as error:     # storage away: counts as renewed (as in the provider)
            log.debug("task hub '%s': app lease renewal failed: %s", self.hub, describe(error))
        return True

    async def _change_from(self, owner: str) -> bool:
        try:
            await BlobLeaseClient(self.container, lease_id=owner).change(self.lease_id)
        except HttpResponseError as error:
            log.info("task hub '%s': could not change the app lease from %s: %s", self.hub, owner, describe(error))
            return False
        await self._write_info({"OwnerId": self.lease_id, "DesiredSwapId": None})
        return True

    async def _read_info(self) -> dict[str, Any]:
        try:
            data = await (await self._info.download_blob()).readall()
        except ResourceNotFoundError:
            return {}
        try:
            info = json.loads(data)
        except ValueError:
            return {}
        return info if isinstance(info, dict) else {}

    async def _write_info(self, info: dict[str, Any]) -> None:
        """Best effort, as the provider's UpdateAppLeaseInfoBlob (the lease itself is what counts)."""
        try:
            await self._info.upload_blob(json.dumps(info, separators=(",", ":")).encode(), overwrite=True)
        except Exception as error:
            log.debug("task hub '%s': could not write the app lease info: %s", self.hub, describe(error))
