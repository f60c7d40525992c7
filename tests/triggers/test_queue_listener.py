"""QueueListener against an in-memory queue: completion, retries, poison, batching, wake-up, stop."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from azure.storage.queue import QueueMessage

from funcemu.triggers.polling import QueueListener, QueueOptions, Received

DEADLINE = 10.0


class FakeQueue:
    """Enough of the aio QueueClient for the listener: visibility, dequeue counts, pop receipts."""

    def __init__(self, name: str) -> None:
        self.queue_name = name
        self.stored: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self.changed = asyncio.Event()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def send_message(self, content: str) -> None:
        ident = str(next(self._ids))
        self.stored[ident] = {"content": content, "dequeue": 0, "visible": self.now(), "receipt": "r0"}
        self.changed.set()

    async def receive_messages(self, *, messages_per_page: int, max_messages: int,
                               visibility_timeout: int) -> AsyncIterator[QueueMessage]:
        ready = [(k, m) for k, m in self.stored.items() if m["visible"] <= self.now()][:max_messages]
        for ident, message in ready:
            message["dequeue"] += 1
            message["visible"] = self.now() + visibility_timeout
            message["receipt"] = f"r{message['dequeue']}"
            yield QueueMessage(content=message["content"], id=ident, dequeue_count=message["dequeue"],
                               pop_receipt=message["receipt"])

    async def update_message(self, message: QueueMessage, *, pop_receipt: str,
                             visibility_timeout: int) -> QueueMessage:
        stored = self.stored[message.id]
        assert stored["receipt"] == pop_receipt
        stored["visible"] = self.now() + visibility_timeout
        return QueueMessage(id=message.id, pop_receipt=pop_receipt)

    async def delete_message(self, message: QueueMessage, *, pop_receipt: str | None) -> None:
        assert self.stored[message.id]["receipt"] == pop_receipt
        del self.stored[message.id]
        self.changed.set()

    def contents(self) -> list[str]:
        return [m["content"] for m in self.stored.values()]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def until(check: Callable[[], bool], what: str) -> None:
    async def loop() -> None:
        while not check():
            await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(loop(), DEADLINE)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def listener(queue: FakeQueue, poison: FakeQueue | None, handler: Callable[[Received], Awaitable[bool]],
             wakeup: asyncio.Event | None = None, **options: Any) -> QueueListener:
    settings = {"max_polling_interval": 0.2, "max_dequeue_count": 3, **options}
    factory = (lambda: _ready(poison)) if poison is not None else None
    return QueueListener(queue.queue_name, queue, QueueOptions(**settings), handler, factory, wakeup)  # type: ignore[arg-type]


async def _ready(queue: FakeQueue) -> FakeQueue:
    return queue


def test_success_deletes_and_the_handler_gets_the_decoded_body() -> None:
    async def scenario() -> None:
        queue, bodies = FakeQueue("q"), []

        async def handler(received: Received) -> bool:
            bodies.append(received.body)
            return True
        await queue.send_message(b64("hello"))
        running = listener(queue, FakeQueue("q-poison"), handler)
        running.start()
        await until(lambda: not queue.stored, "the message to be deleted")
        await running.stop()
        assert bodies == [b"hello"]
    asyncio.run(scenario())


def test_failures_retry_up_to_max_dequeue_count_then_poison_intact() -> None:
    async def scenario() -> None:
        queue, poison, attempts = FakeQueue("q"), FakeQueue("q-poison"), []

        async def handler(received: Received) -> bool:
            attempts.append(received.message.dequeue_count)
            return False
        await queue.send_message(b64("bad"))
        running = listener(queue, poison, handler)
        running.start()
        await until(lambda: bool(poison.stored), "the poison message")
        await running.stop()
        assert attempts == [1, 2, 3]
        assert poison.contents() == [b64("bad")] and not queue.stored
    asyncio.run(scenario())


def test_visibility_timeout_delays_the_retry() -> None:
    async def scenario() -> None:
        queue, times = FakeQueue("q"), []

        async def handler(received: Received) -> bool:
            times.append(queue.now())
            return len(times) > 1
        await queue.send_message(b64("x"))
        running = listener(queue, FakeQueue("q-poison"), handler, visibility_timeout=1.0)
        running.start()
        await until(lambda: not queue.stored, "the retry to succeed")
        await running.stop()
        assert times[1] - times[0] >= 1.0
    asyncio.run(scenario())


def test_a_message_already_past_max_dequeue_count_goes_straight_to_poison() -> None:
    async def scenario() -> None:
        queue, poison, calls = FakeQueue("q"), FakeQueue("q-poison"), []
        await queue.send_message(b64("old"))
        queue.stored["1"]["dequeue"] = 3                     # received 3 times by a host that crashed

        async def handler(received: Received) -> bool:
            calls.append(received)
            return True
        running = listener(queue, poison, handler)
        running.start()
        await until(lambda: bool(poison.stored), "the poison message")
        await running.stop()
        assert calls == [] and poison.contents() == [b64("old")]
    asyncio.run(scenario())


def test_without_a_poison_queue_a_failed_message_is_neither_lost_nor_retried_forever() -> None:
    async def scenario() -> None:
        queue, calls = FakeQueue("q-poison"), []

        async def handler(received: Received) -> bool:
            calls.append(1)
            return False
        await queue.send_message(b64("x"))
        running = listener(queue, None, handler)
        running.start()
        await until(lambda: len(calls) == 3 and queue.stored["1"]["visible"] > queue.now() + 60, "the last try")
        await running.stop()
        assert queue.contents() == [b64("x")]
    asyncio.run(scenario())


def test_batch_size_and_threshold_bound_concurrency() -> None:
    """A batch of batchSize runs at once; the next batch comes when at most newBatchThreshold are in flight."""
    async def scenario() -> None:
        queue, gates, active, peak = FakeQueue("q"), [asyncio.Event() for _ in range(6)], [0], [0]
        entered: list[int] = []

        async def handler(received: Received) -> bool:
            index = len(entered)
            entered.append(index)
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            await gates[index].wait()
            active[0] -= 1
            return True
        for n in range(6):
            await queue.send_message(b64(str(n)))
        running = listener(queue, FakeQueue("q-poison"), handler, batch_size=2, new_batch_threshold=1)
        running.start()
        await until(lambda: len(entered) == 2, "the first batch")
        gates[0].set()                                        # 1 in flight <= threshold: fetch 2 more
        await until(lambda: len(entered) == 4, "the second batch")
        assert active[0] == 3
        for gate in gates:
            gate.set()
        await until(lambda: not queue.stored, "all messages")
        await running.stop()
        assert peak[0] == 3                                   # batchSize + newBatchThreshold
    asyncio.run(scenario())


def test_a_wakeup_cuts_the_back_off_short() -> None:
    async def scenario() -> None:
        queue, wakeup, done = FakeQueue("q"), asyncio.Event(), asyncio.Event()

        async def handler(received: Received) -> bool:
            done.set()
            return True
        running = listener(queue, FakeQueue("q-poison"), handler, wakeup=wakeup, max_polling_interval=30.0)
        running.start()
        await asyncio.sleep(0.5)                           # idle: back-off is growing towards 30 s
        await queue.send_message(b64("now"))
        started = queue.now()
        wakeup.set()
        await asyncio.wait_for(done.wait(), DEADLINE)
        await running.stop()
        assert queue.now() - started < 0.2
    asyncio.run(scenario())


def test_invalid_base64_is_poisoned_without_calling_the_handler() -> None:
    async def scenario() -> None:
        queue, poison, calls = FakeQueue("q"), FakeQueue("q-poison"), []

        async def handler(received: Received) -> bool:
            calls.append(received)
            return True
        await queue.send_message("plain text!")
        running = listener(queue, poison, handler)
        running.start()
        await until(lambda: bool(poison.stored), "the poison message")
        await running.stop()
        assert calls == [] and poison.contents() == ["plain text!"]
    asyncio.run(scenario())
