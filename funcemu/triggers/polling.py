"""Polling an Azure Storage queue the way the host's QueueListener does (§5.2).

Used by the queue trigger and by the blob trigger's host queue. One listener receives batches of up to
`batchSize` messages (invisible for 10 minutes, renewed while the function runs), processes them
concurrently, and fetches the next batch as soon as no more than `newBatchThreshold` are in flight.
An empty poll (or a missing queue) backs off exponentially, randomized, up to `maxPollingInterval`;
an output binding of this host writing to the queue wakes the listener at once. A message is deleted
on success; on failure it becomes visible again after `visibilityTimeout`, and after `maxDequeueCount`
attempts it moves, content unchanged, to `<queue>-poison`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from funcemu.config import ConfigError, HostJson, parse_timespan

log = logging.getLogger("funcemu.triggers.queue")
MIN_POLLING_INTERVAL = 0.1
RECEIVE_VISIBILITY = 600        # seconds a received message stays invisible; renewed at half of it
STOP_GRACE = 10.0               # seconds in-flight invocations get when the host stops
MAX_QUEUE_NAME = 63
_BASE64_WHITESPACE = str.maketrans("", "", " \t\r\n")


@dataclass(frozen=True)
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, host_json: HostJson) -> QueueOptions:
        """`extensions.queues.*`, validated with the host's bounds; ConfigError names the key."""
        batch = _int(host_json, "batchSize", 16, 1, 32)
        threshold_default = batch // 2 * (os.cpu_count() or 1)
        encoding = str(host_json.get("extensions.queues.messageEncoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise ConfigError(host_json.path, f"'{encoding}' must be 'base64' or 'none'",
                              key="extensions.queues.messageEncoding")
        return cls(batch_size=batch,
                   new_batch_threshold=_int(host_json, "newBatchThreshold", threshold_default, 0, 10_000),
                   max_polling_interval=_seconds(host_json, "maxPollingInterval", 60.0, MIN_POLLING_INTERVAL),
                   visibility_timeout=_seconds(host_json, "visibilityTimeout", 0.0, 0.0),
                   max_dequeue_count=_int(host_json, "maxDequeueCount", 5, 1, 10_000),
                   message_encoding=encoding)


def _int(host_json: HostJson, name: str, default: int, low: int, high: int) -> int:
    raw = host_json.get(f"extensions.queues.{name}", default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = low - 1
    if not low <= value <= high or isinstance(raw, bool):
        raise ConfigError(host_json.path, f"{raw!r} must be an integer from {low} to {high}",
                          key=f"extensions.queues.{name}")
    return value


def _seconds(host_json: HostJson, name: str, default: float, minimum: float) -> float:
    """A TimeSpan string (`00:00:02`), or a number of milliseconds (the v1 host.json form)."""
    raw = host_json.get(f"extensions.queues.{name}")
    if raw is None:
        return default
    try:
        value = raw / 1000 if isinstance(raw, (int, float)) and not isinstance(raw, bool) else parse_timespan(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ConfigError(host_json.path, f"{raw!r} must be a TimeSpan (hh:mm:ss[.fff]) of at least "
                          f"{minimum:g} s", key=f"extensions.queues.{name}")
    return float(value)


class Backoff:
    """The host's randomized exponential back-off: minimum + rand(0.8..1.2) * 2^(n-1) * minimum."""

    def __init__(self, maximum: float, minimum: float = MIN_POLLING_INTERVAL,
                 rand: Callable[[], float] = random.random) -> None:
        self.minimum, self.maximum, self._rand = minimum, max(maximum, minimum), rand
        self.reset()

    def reset(self) -> None:
        self.current, self._exponent = self.minimum, 1

    def next(self) -> float:
        if self.current < self.maximum:
            factor = 0.8 + 0.4 * self._rand()
            candidate = self.minimum + factor * 2 ** (self._exponent - 1) * self.minimum
            if candidate < self.maximum:
                self.current, self._exponent = candidate, self._exponent + 1
            else:
                self.current = self.maximum
        return self.current


def poison_name(queue: str) -> str | None:
    """`<queue>-poison`, or None when the queue is a poison queue or the name would be too long."""
    name = f"{queue}-poison"
    return None if queue.endswith("-poison") or len(name) > MAX_QUEUE_NAME else name


def decode_body(content: str | None, encoding: str) -> bytes:
    """The message body as bytes; binascii.Error when base64 is expected and the text is not.

    As .NET's Convert.FromBase64String: spaces, tabs, CR and LF anywhere are ignored; any other
    character outside the alphabet, or bad padding, is an error."""
    text = content or ""
    if encoding == "base64":
        compact = text.translate(_BASE64_WHITESPACE)
        return base64.b64decode(compact.encode("ascii", errors="strict"), validate=True)
    return text.encode("utf-8")


def encode_body(body: bytes, encoding: str) -> str:
    if encoding == "base64":
        return base64.b64encode(body).decode("ascii")
    return body.decode("utf-8", errors="replace")


@dataclass
class Received:
    """A message being processed: the service's message (its pop receipt kept current) and its body."""

    message: QueueMessage
    body: bytes
    pop_receipt: str


Handler = Callable[[Received], Awaitable[bool]]


class QueueListener:
    def __init__(self, label: str, client: QueueClient, options: QueueOptions, handler: Handler,
                 poison: Callable[[], Awaitable[QueueClient]] | None, wakeup: asyncio.Event | None = None) -> None:
        self.label, self.client, self.options, self.handler = label, client, options, handler
        self._poison = poison
        self._wakeup = wakeup or asyncio.Event()
        self._backoff = Backoff(options.max_polling_interval)
        self._inflight: set[asyncio.Task[None]] = set()
        self._capacity = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._missing_logged = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"queue listener {self.label}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=STOP_GRACE)
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            found = await self._poll()
            if found:
                self._backoff.reset()
                await self._wait_for_capacity()
                continue
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._backoff.next())
            except asyncio.TimeoutError:
                pass

    async def _wait_for_capacity(self) -> None:
        while len(self._inflight) > self.options.new_batch_threshold:
            self._capacity.clear()
            await self._capacity.wait()

    async def _poll(self) -> int:
        try:
            messages = [m async for m in self.client.receive_messages(
                messages_per_page=self.options.batch_size, max_messages=self.options.batch_size,
                visibility_timeout=RECEIVE_VISIBILITY)]
        except ResourceNotFoundError:
            if not self._missing_logged:
                log.info("Queue '%s' does not exist (yet); polling it with back-off.", self.label)
                self._missing_logged = True
            return 0
        except HttpResponseError as exc:
            if (exc.status_code or 0) < 500:
                log.error("Polling queue '%s' failed: %s", self.label, str(exc).splitlines()[0])
            return 0
        except Exception as exc:  # the service went away: keep polling with back-off, as the host does
            log.error("Polling queue '%s' failed: %s: %s", self.label, type(exc).__name__, exc)
            return 0
        self._missing_logged = False
        for message in messages:
            task = asyncio.create_task(self._process(message))
            self._inflight.add(task)
            task.add_done_callback(self._done)
        return len(messages)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._capacity.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("Queue '%s': processing a message failed", self.label, exc_info=task.exception())

    async def _process(self, message: QueueMessage) -> None:
        if (message.dequeue_count or 0) > self.options.max_dequeue_count:
            await self._to_poison(message, message.pop_receipt)
            return
        try:
            body = decode_body(message.content, self.options.message_encoding)
        except (binascii.Error, UnicodeEncodeError):
            log.warning("Message '%s' on queue '%s' is not valid base64 (extensions.queues.messageEncoding is "
                        "'base64'); moving it to the poison queue.", message.id, self.label)
            await self._to_poison(message, message.pop_receipt, announce=False)
            return
        received = Received(message, body, message.pop_receipt or "")
        renewal = asyncio.create_task(self._renew(received))
        try:
            ok = await self.handler(received)
        finally:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
        await self._complete(received, ok)

    async def _renew(self, received: Received) -> None:
        while True:
            await asyncio.sleep(RECEIVE_VISIBILITY / 2)
            updated = await self.client.update_message(received.message, pop_receipt=received.pop_receipt,
                                                       visibility_timeout=RECEIVE_VISIBILITY)
            received.pop_receipt = updated.pop_receipt or received.pop_receipt

    async def _complete(self, received: Received, ok: bool) -> None:
        message = received.message
        if ok:
            await self.client.delete_message(message, pop_receipt=received.pop_receipt)
        elif (message.dequeue_count or 0) >= self.options.max_dequeue_count:
            await self._to_poison(message, received.pop_receipt)
        else:
            await self.client.update_message(message, pop_receipt=received.pop_receipt,
                                             visibility_timeout=int(self.options.visibility_timeout))

    async def _to_poison(self, message: QueueMessage, pop_receipt: str | None, announce: bool = True) -> None:
        """Copy the message text unchanged to the poison queue, then delete the original."""
        if self._poison is None:
            log.warning("Message '%s' on queue '%s' failed %d times; there is no poison queue for this queue, "
                        "so it stays invisible.", message.id, self.label, message.dequeue_count)
            return
        poison = await self._poison()
        if announce:
            log.warning("Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
                        self.options.max_dequeue_count, poison.queue_name)
        await poison.send_message(message.content)
        await self.client.delete_message(message, pop_receipt=pop_receipt)

