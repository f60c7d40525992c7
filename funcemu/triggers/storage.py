"""Storage accounts behind the storage triggers and bindings.

A binding's `connection` is resolved as the host resolves it (§5.4): empty means `Storage`, then
`AzureWebJobs<name>` before `<name>`. Each connection string gets one set of aio clients, shared by
every binding that uses it. At startup every endpoint is probed once, so an unreachable Azurite is
reported once, naming the function, the setting and the endpoint, instead of failing every poll.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from funcemu.durable.store.connection import resolve_connection
from funcemu.errors import FuncemuError

PROBE_TIMEOUT = 5.0
IDENTITY_SUFFIXES = ("__serviceUri", "__queueServiceUri", "__blobServiceUri", "__tableServiceUri",
                     "__accountName", "__endpoint")


class StorageConnectionError(FuncemuError):
    """A storage binding whose connection setting is missing or unsupported (a startup error)."""

    def __init__(self, function: str, binding: str, problem: str) -> None:
        super().__init__(f"Function '{function}' (binding '{binding}'): {problem}")
        self.function, self.binding = function, binding


def connection_name(binding: Mapping[str, Any]) -> str:
    return str(binding.get("connection") or "Storage")


def setting_for(name: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(setting name, connection string) for a connection name, or None when nothing is set."""
    value = resolve_connection(name, environ)
    if value is None:
        return None
    prefixed = f"AzureWebJobs{name}"
    found = prefixed if environ.get(f"ConnectionStrings:{prefixed}") or environ.get(prefixed) else name
    return found, value


def missing_message(name: str, environ: Mapping[str, str]) -> str:
    """The host's text, plus why when only an identity-based connection (unsupported here) is set."""
    text = (f"Storage account connection string 'AzureWebJobs{name}' does not exist. Make sure that it is a "
            "defined App Setting (local.settings.json Values).")
    identity = [key for key in environ for prefix in (f"AzureWebJobs{name}", name)
                for suffix in IDENTITY_SUFFIXES if key == prefix + suffix]
    if identity:
        text += (f" Found identity-based settings ({', '.join(sorted(identity))}), which funcemu does not "
                 "support: set a connection string (UseDevelopmentStorage=true for Azurite).")
    return text


class StorageAccount:
    """The aio clients of one connection string; created on first use, closed with `close()`."""

    def __init__(self, setting: str, connection_string: str) -> None:
        self.setting = setting
        self.connection_string = connection_string
        self._clients: dict[str, Any] = {}
        self._ensured: set[tuple[str, str]] = set()

    @property
    def queues(self) -> QueueServiceClient:
        return self._client("queue", QueueServiceClient)

    @property
    def blobs(self) -> BlobServiceClient:
        return self._client("blob", BlobServiceClient)

    @property
    def tables(self) -> TableServiceClient:
        return self._client("table", TableServiceClient)

    def _client(self, service: str, cls: Any) -> Any:
        if service not in self._clients:
            self._clients[service] = cls.from_connection_string(self.connection_string)
        return self._clients[service]

    def queue(self, name: str) -> QueueClient:
        return self.queues.get_queue_client(name)

    def container(self, name: str) -> ContainerClient:
        return self.blobs.get_container_client(name)

    def key(self, service: str, name: str) -> tuple[str, str]:
        """Identifies a queue or container across bindings that name the same account differently."""
        client: Any = self.queues if service == "queue" else self.blobs
        return (client.url.rstrip("/").lower(), name.lower())

    async def ensure_queue(self, name: str) -> QueueClient:
        """The queue client, creating the queue once per process (as output bindings and poisoning do)."""
        client = self.queue(name)
        await self._ensure(("queue", name), client.create_queue)
        return client

    async def ensure_container(self, name: str) -> ContainerClient:
        client = self.container(name)
        await self._ensure(("blob", name), client.create_container)
        return client

    async def _ensure(self, key: tuple[str, str], create: Callable[[], Awaitable[Any]]) -> None:
        if key not in self._ensured:
            try:
                await create()
            except ResourceExistsError:
                pass
            self._ensured.add(key)

    async def probe(self, service: str) -> None:
        """One request without retries; raises OSError-like or HttpResponseError on failure."""
        cls: Any = {"blob": BlobServiceClient, "queue": QueueServiceClient, "table": TableServiceClient}[service]
        client = cls.from_connection_string(self.connection_string, retry_total=0)
        async with client:
            await asyncio.wait_for(client.get_service_properties(), PROBE_TIMEOUT)

    def endpoint(self, service: str) -> str:
        return str(getattr(self, {"blob": "blobs", "queue": "queues", "table": "tables"}[service]).url).rstrip("/")

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


class Accounts:
    """Every storage account used by the app, keyed by setting; probes each service once."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self._accounts: dict[str, StorageAccount] = {}
        self._problems: dict[tuple[str, str], str | None] = {}

    def for_binding(self, function: str, binding: Mapping[str, Any]) -> StorageAccount:
        """The account of a binding's `connection`; StorageConnectionError when the setting is missing."""
        name = connection_name(binding)
        found = setting_for(name, self.environ)
        if found is None:
            raise StorageConnectionError(function, str(binding.get("name")), missing_message(name, self.environ))
        return self.for_setting(*found)

    def default(self) -> StorageAccount | None:
        """The host's own storage (AzureWebJobsStorage), or None when it is not set."""
        found = setting_for("Storage", self.environ)
        return self.for_setting(*found) if found else None

    def for_setting(self, setting: str, connection_string: str) -> StorageAccount:
        if setting not in self._accounts:
            self._accounts[setting] = StorageAccount(setting, connection_string)
        return self._accounts[setting]

    async def problem(self, account: StorageAccount, service: str) -> str | None:
        """Why the service cannot be used, or None when it answers; probed once per account and service."""
        key = (account.setting, service)
        if key not in self._problems:
            self._problems[key] = await probe_problem(account, service)
        return self._problems[key]

    async def probe_all(self, pairs: Iterable[tuple[StorageAccount, str]]) -> None:
        """Probe every distinct (account, service) at once, so slow endpoints do not add up."""
        distinct = {(account.setting, service): (account, service) for account, service in pairs}
        await asyncio.gather(*(self.problem(account, service) for account, service in distinct.values()))

    async def close(self) -> None:
        for account in self._accounts.values():
            await account.close()


async def probe_problem(account: StorageAccount, service: str) -> str | None:
    """One fresh probe: None when the service answers, else why it cannot be used."""
    try:
        await account.probe(service)
    except Exception as exc:  # azure-core wraps transport errors in ServiceRequestError and the like
        return unreachable_message(account, service, exc)
    return None


def unreachable_message(account: StorageAccount, service: str, exc: BaseException) -> str:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, asyncio.TimeoutError):
        detail = f"no answer within {PROBE_TIMEOUT:g} s"
    return (f"the {service} endpoint {account.endpoint(service)} of connection setting '{account.setting}' "
            f"cannot be used: {detail}. Is Azurite (or the storage account) running and reachable?")


class Watchers:
    """In-process notifications: an output binding that writes a queue message or a blob wakes the
    listener of that queue or container at once (the host's SharedQueueWatcher / blob writes)."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], list[asyncio.Event]] = defaultdict(list)

    def subscribe(self, key: tuple[str, str]) -> asyncio.Event:
        event = asyncio.Event()
        self._events[key].append(event)
        return event

    def notify(self, key: tuple[str, str]) -> None:
        for event in self._events.get(key, ()):
            event.set()
