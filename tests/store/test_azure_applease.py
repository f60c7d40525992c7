"""The app lease of an Azure Storage task hub (§7.1): held with the AppName's id while a store is open,
shared by stores of one app, refused to another app (which then processes nothing and takes over when
the lease comes free), lost on a refused renewal, and no obstacle to deleting the hub."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient

from funcemu.durable import history
from funcemu.durable.store import InstanceState, Message, RuntimeStatus
from funcemu.durable.store import azure_applease as applease
from funcemu.durable.store.azure import AzureStore
from funcemu.testing.azurite import Azurite

pytestmark = pytest.mark.azurite
Run = Callable[[Awaitable[Any]], Any]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
ONE, TWO = applease.app_lease_id("appone"), applease.app_lease_id("apptwo")


def test_the_lease_id_is_fnv1a_of_the_app_name_as_a_guid() -> None:
    assert applease.app_lease_id("") == "811c9dc5-0000-0000-0000-000000000000"
    assert applease.app_lease_id("myapp") == "1312a8a6-0000-0000-0000-000000000000"
    assert applease.app_name({"WEBSITE_SITE_NAME": "site", "DTFX_APP_NAME": "dtfx"}) == "site"
    assert applease.app_name({"DTFX_APP_NAME": "dtfx"}) == "dtfx"
    assert applease.app_name({}) == ""


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(applease, "ACQUIRE_INTERVAL", 0.2)
    monkeypatch.setattr(applease, "RENEW_INTERVAL", 0.2)


@pytest.fixture
def stores(azurite: Azurite, hub_name: str, run: Run,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], AzureStore]]:
    """Open stores on one fresh hub, each with the given WEBSITE_SITE_NAME; closed, hub deleted after."""
    opened: list[AzureStore] = []
    monkeypatch.delenv("DTFX_APP_NAME", raising=False)

    def open_as(app: str) -> AzureStore:
        monkeypatch.setenv("WEBSITE_SITE_NAME", app)
        store = AzureStore(azurite.connection_string, hub_name)
        run(store.open())
        opened.append(store)
        return store
    yield open_as
    for store in opened:
        run(store.close())
    cleaner = open_as("cleaner")
    run(cleaner.delete_task_hub())
    run(cleaner.close())


async def lease_state(store: AzureStore) -> tuple[str, dict[str, Any]]:
    """The container's lease state and the appleaseinfo blob, read by a client of the test's own."""
    async with BlobServiceClient.from_connection_string(store._connection) as blobs:
        container = blobs.get_container_client(store.names.applease_container)
        properties = await container.get_container_properties()
        info = await (await container.download_blob(store.names.appleaseinfo_blob)).readall()
        return str(properties.lease.state), json.loads(info)


async def acquire_as(store: AzureStore, lease_id: str) -> bool:
    async with BlobServiceClient.from_connection_string(store._connection) as blobs:
        container = blobs.get_container_client(store.names.applease_container)
        try:
            await container.acquire_lease(lease_duration=60, lease_id=lease_id)
        except HttpResponseError as error:
            assert error.status_code == 409
            return False
        return True


async def create(store: AzureStore, instance_id: str) -> None:
    state = InstanceState(instance_id=instance_id, name="hello", execution_id="e1",
                          runtime_status=RuntimeStatus.Pending, created_time=T0, last_updated_time=T0)
    event = history.execution_started(T0, "hello", instance_id, "e1", None)
    await store.create_instance(state, Message(instance_id=instance_id, event=event, execution_id="e1"))


async def ready(store: AzureStore) -> list[str]:
    return await store.ready_instances(datetime.now(timezone.utc), 10)


async def eventually_ready(store: AzureStore, timeout: float = 10.0) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await ready(store)) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    return found


def test_open_takes_the_lease_with_the_app_id_and_close_releases_it(stores: Callable[[str], AzureStore],
                                                                   run: Run) -> None:
    store = stores("appone")
    state, info = run(lease_state(store))
    assert state == "leased" and info == {"OwnerId": ONE, "DesiredSwapId": None}
    assert run(acquire_as(store, TWO)) is False       # another app is refused
    run(store.close())
    assert run(lease_state(store))[0] == "available"


def test_another_app_processes_nothing_until_the_holder_closes(
        stores: Callable[[str], AzureStore], run: Run, fast: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "funcemu.durable")
    holder = stores("appone")
    other = stores("apptwo")
    assert not other._app_lease or not other._app_lease.owned
    run(create(other, "waiting"))               # the management side works without the lease
    assert run(other.get_instance("waiting")) is not None
    run(asyncio.sleep(0.7))                      # a few retries
    assert run(ready(other)) == [] and run(other.fetch_activities(10)) == []
    refusals = [r for r in caplog.records if r.levelno == logging.WARNING and "held by another app" in r.message]
    assert len(refusals) == 1 and other.names.hub in refusals[0].message

    run(holder.close())
    assert run(eventually_ready(other)) == ["waiting"]
    assert run(lease_state(other)) == ("leased", {"OwnerId": TWO, "DesiredSwapId": None})
    assert any("now holds the app lease" in r.message for r in caplog.records)


def test_processes_of_one_app_share_the_lease_and_the_work(stores: Callable[[str], AzureStore], run: Run,
                                                           fast: None) -> None:
    first, second = stores("appone"), stores("appone")
    assert first._app_lease is not None and second._app_lease is not None
    assert first._app_lease.owned and second._app_lease.owned
    run(create(first, "shared"))
    assert run(eventually_ready(second)) == ["shared"]
    run(first.close())                             # releases the lease the two share
    run(asyncio.sleep(0.8))                        # the second renews, is refused, and takes it again
    assert second._app_lease.owned and run(lease_state(second))[0] == "leased"
    assert run(acquire_as(second, TWO)) is False


def test_a_refused_renewal_stops_processing_until_the_lease_is_back(
        stores: Callable[[str], AzureStore], run: Run, fast: None) -> None:
    store = stores("appone")
    assert store._app_lease is not None

    async def take_over() -> None:          # another app breaks the lease and takes it
        async with BlobServiceClient.from_connection_string(store._connection) as blobs:
            container = blobs.get_container_client(store.names.applease_container)
            await BlobLeaseClient(container).break_lease(lease_break_period=0)
            await container.acquire_lease(lease_duration=60, lease_id=TWO)
    run(take_over())
    run(asyncio.sleep(0.8))
    assert not store._app_lease.owned
    run(create(store, "later"))
    run(asyncio.sleep(0.3))
    assert run(ready(store)) == []

    async def give_back() -> None:
        async with BlobServiceClient.from_connection_string(store._connection) as blobs:
            container = blobs.get_container_client(store.names.applease_container)
            await BlobLeaseClient(container, lease_id=TWO).release()
    run(give_back())
    assert run(eventually_ready(store)) == ["later"]
    assert store._app_lease.owned


@pytest.mark.parametrize("deleter", ["holder", "other app"])
def test_the_hub_is_deleted_with_its_lease(stores: Callable[[str], AzureStore], run: Run, deleter: str) -> None:
    holder = stores("appone")
    store = holder if deleter == "holder" else stores("apptwo")
    run(store.delete_task_hub())
    with pytest.raises(ResourceNotFoundError):
        run(lease_state(holder))
    run(create(store, "again"))                    # a later write creates the hub again
    if deleter == "holder":
        assert run(lease_state(store))[0] == "leased"
        assert run(eventually_ready(store)) == ["again"]
