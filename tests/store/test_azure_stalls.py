"""Storage that accepts a request and never answers must not stall the store for minutes.

The SDKs' aiohttp transport waits 300 s to connect and 300 s for each read when the caller builds it
(the store does, see `azure._transport`), and retries three times: one request Azurite swallowed held
up its caller for 5 to 20 minutes. A proxy in front of Azurite swallows requests on demand here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest

from funcemu.durable import history
from funcemu.durable.store import azure as azure_module
from funcemu.durable.store import azure_outage
from funcemu.durable.store.azure import AzureStore
from funcemu.durable.store.base import Message
from funcemu.testing.azurite import Azurite

Run = Callable[[Awaitable[Any]], Any]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


class SwallowingProxy:
    """Forwards TCP connections to one endpoint; while `swallow` is set, requests are read and dropped."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.swallow = target, False
        self.server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self.server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        try:
            await asyncio.gather(self._pump(reader, upstream_writer, requests=True),
                                 self._pump(upstream_reader, writer, requests=False))
        finally:
            for stream in (writer, upstream_writer):
                stream.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, requests: bool) -> None:
        while data := await reader.read(65536):
            if requests and self.swallow:
                continue
            writer.write(data)
            await writer.drain()
        writer.close()


def with_queue_endpoint(connection: str) -> tuple[str, tuple[str, int]]:
    """The connection string with `{port}` for the queue endpoint's port, and that endpoint's address."""
    parts = dict(part.split("=", 1) for part in connection.split(";") if part)
    url = urlsplit(parts["QueueEndpoint"])
    parts["QueueEndpoint"] = url._replace(netloc="127.0.0.1:{port}").geturl()
    return ";".join(f"{key}={value}" for key, value in parts.items()) + ";", \
        (url.hostname or "127.0.0.1", int(url.port or 10001))


def test_requests_time_out_instead_of_waiting_minutes() -> None:
    transport = azure_module._transport()  # noqa: SLF001
    assert transport.connection_config.timeout == azure_module.CONNECT_TIMEOUT <= 20
    assert transport.connection_config.read_timeout == azure_module.READ_TIMEOUT <= 60


def test_a_request_storage_never_answers_fails_in_seconds_and_the_store_goes_on(
        azurite: Azurite, hub_name: str, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azure_module, "READ_TIMEOUT", 0.5)
    monkeypatch.setattr(azure_outage, "OUTAGE_LIMIT", 60.0)
    template, queue_address = with_queue_endpoint(azurite.connection_string)
    proxy = SwallowingProxy(queue_address)
    store = AzureStore(template.format(port=run(proxy.start())), hub_name)
    run(store.open())
    try:
        proxy.swallow = True
        began = time.monotonic()
        # a poll that gets no answer receives nothing (the dispatcher polls again), well within a minute
        assert run(asyncio.wait_for(store.ready_instances(T0, 10), 30)) == []
        assert time.monotonic() - began < 20

        async def send_while_storage_is_back() -> list[Message]:
            sending = asyncio.ensure_future(store.send_messages([Message("stuck", history.event_raised(
                T0, "go", None))]))
            await asyncio.sleep(1.0)
            proxy.swallow = False       # the send's attempts so far went unanswered; the next one lands
            await asyncio.wait_for(sending, 30)
            return await store.pending_messages("stuck", T0)
        assert [message.event["Name"] for message in run(send_while_storage_is_back())] == ["go"]
    finally:
        proxy.swallow = False
        run(store.delete_task_hub())
        run(store.close())
        run(proxy.stop())
