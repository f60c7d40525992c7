"""Storage that accepts a request and never answers must not stall the store for minutes, nor may slow
or failing lease updates lose what this process holds.

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
from azure.core.exceptions import HttpResponseError

from funcemu.durable import history
from funcemu.durable.store import azure as azure_module
from funcemu.durable.store import azure_outage
from funcemu.durable.store.azure import AzureStore
from funcemu.durable.store.azure_activities import WorkItems
from funcemu.durable.store.azure_messaging import Messaging
from funcemu.durable.store.azure_names import hub_names
from funcemu.durable.store.azure_queues import Held
from funcemu.durable.store.base import ActivityItem, Message
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


class SlowQueues:
    """A stand-in for `HubQueues` whose lease updates take `delay` seconds (or fail with `error`)."""

    lease = 60

    def __init__(self, delay: float = 0.0, error: BaseException | None = None) -> None:
        self.delay, self.error = delay, error
        self.running = self.most = 0

    async def hide(self, held: Held, seconds: int) -> bool:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay)
            if self.error is not None:
                raise self.error
            held.lease_until = time.monotonic() + seconds if seconds else 0.0
            return True
        finally:
            self.running -= 1


def held_message(number: int, lease_left: float) -> Held:
    return Held("hub-control-00", f"m{number}", "receipt", number, time.monotonic() + lease_left,
                message=Message(f"i{number}", history.event_raised(T0, "go", None)))


def test_renewals_of_many_held_messages_run_side_by_side() -> None:
    queues = SlowQueues(delay=0.2)
    messaging = Messaging(queues)  # type: ignore[arg-type]
    for number in range(100):
        messaging.inbox.remember(held_message(number, 5.0))

    async def renew() -> float:
        began = time.monotonic()
        await messaging.renew_expiring()
        return time.monotonic() - began
    took = asyncio.run(renew())
    assert took < 5.0                   # one after another: 20 s, past the 5 s the last lease had left
    assert queues.most > 1
    assert all(held.lease_until > time.monotonic() + 50 for held in messaging.inbox.held.values())


def test_a_failed_give_back_keeps_the_prefetched_items_for_the_next_fetch() -> None:
    error = HttpResponseError(message="bad request")
    error.status_code = 400
    messaging = Messaging(SlowQueues(error=error))  # type: ignore[arg-type]
    item = ActivityItem("i1", "e1", 1, "hello", None)
    late = Held("hub-workitems", "w0", "receipt", 0, time.monotonic() + 1, item=item)
    fresh = Held("hub-workitems", "w1", "receipt", 1, time.monotonic() + 59, item=item)
    messaging.prefetched.update({"w0": late, "w1": fresh})
    work_items = WorkItems(messaging, None, {})  # type: ignore[arg-type]
    with pytest.raises(HttpResponseError):
        asyncio.run(work_items.fetch(10, 0.45))
    assert "w1" in messaging.prefetched and not messaging.leased


class FailingSends(SlowQueues):
    """`SlowQueues` whose sends are refused (not an outage: retrying would not help)."""

    names = hub_names("hub", 4)
    hidden: list[tuple[str, int]]

    def control_queue(self, instance_id: str) -> str:
        return self.names.control_queues[0]

    async def encode(self, envelope: dict[str, object]) -> tuple[str, str | None]:
        return "body", None

    async def send(self, queue: str, body: str, delay: int) -> object:
        error = HttpResponseError(message="refused")
        error.status_code = 400
        raise error

    async def hide(self, held: Held, seconds: int) -> bool:
        self.hidden.append((held.message_id, seconds))
        return True


def test_an_activity_result_that_cannot_be_sent_gives_its_item_back() -> None:
    queues = FailingSends()
    queues.hidden = []
    messaging = Messaging(queues)  # type: ignore[arg-type]
    item = ActivityItem("i1", "e1", 1, "hello", None, item_id="w1")
    messaging.leased["w1"] = Held("hub-workitems", "w1", "receipt", 1, time.monotonic() + 59, item=item)
    messaging.items_dirty = False
    work_items = WorkItems(messaging, None, {})  # type: ignore[arg-type]
    result = Message("i1", history.task_completed(T0, 1, '"done"'), "e1")
    with pytest.raises(HttpResponseError):
        asyncio.run(work_items.complete(item, result))
    # not leased (and renewed) forever with nothing left to complete it: back in the queue, read again
    assert "w1" not in messaging.leased and queues.hidden == [("w1", 0)] and messaging.items_dirty
