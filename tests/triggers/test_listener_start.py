"""A listener whose storage does not answer: the error names function, binding, setting and endpoint, the
listener is retried in the background with a capped back-off, and one line says when it has started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import pytest

from funcemu.triggers.listeners import Listener, Need
from funcemu.triggers.polling import Backoff
from funcemu.triggers.storage import StorageAccount

ACCOUNT = StorageAccount("Orders", "UseDevelopmentStorage=true")   # never contacted: the probes are fakes
NEED = Need("msg", ACCOUNT, "queue")
DOWN = "the queue endpoint http://127.0.0.1:10001/devstoreaccount1 of connection setting 'Orders' cannot be used"


class Fakes:
    """Probe answers (the last one repeats), and what the listener did."""

    def __init__(self, *answers: str | None, start_fails: int = 0) -> None:
        self.answers = list(answers)
        self.start_fails = start_fails
        self.starts = self.stops = 0
        self.started = asyncio.Event()

    async def probe(self, account: StorageAccount, service: str) -> str | None:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.start_fails:
            raise ConnectionResetError("the storage closed the connection")
        self.started.set()

    async def stop(self) -> None:
        self.stops += 1

    def listener(self) -> Listener:
        fast = Backoff(0.05, minimum=0.01)
        return Listener("consume", [NEED], self.start, self.stop, backoff=fast, probe=self.probe)


def run(fakes: Fakes, body: Callable[[Listener], Awaitable[None]]) -> None:
    async def main() -> None:
        listener = fakes.listener()
        async with contextlib.AsyncExitStack() as stack:
            await listener.open(stack, fakes.probe)
            await body(listener)
    asyncio.run(main())


async def started(fakes: Fakes) -> None:
    await asyncio.wait_for(fakes.started.wait(), timeout=5)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name == "funcemu.triggers"]


def test_storage_that_answers_starts_the_listener_at_once(caplog: pytest.LogCaptureFixture) -> None:
    fakes = Fakes(None)

    async def body(listener: Listener) -> None:
        assert listener.started and fakes.starts == 1

    run(fakes, body)
    assert fakes.stops == 1
    assert messages(caplog, logging.ERROR) == []


def test_unreachable_storage_is_logged_once_and_retried_until_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "funcemu.triggers")
    fakes = Fakes(DOWN, DOWN, DOWN, None)

    async def body(listener: Listener) -> None:
        await started(fakes)

    run(fakes, body)
    assert messages(caplog, logging.ERROR) == [
        "The listener for function 'Functions.consume' was unable to start.\n"
        f"Function 'consume' (binding 'msg'): {DOWN} funcemu keeps serving the other functions and retries this "
        "listener in the background (at most every 0.05 s)."]
    assert messages(caplog, logging.WARNING) == [
        "The listener for function 'Functions.consume' has started (attempt 4): its storage answers now."]
    assert fakes.starts == 1 and fakes.stops == 1


def test_a_new_cause_is_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    fakes = Fakes(DOWN, DOWN, "the queue endpoint ... answered 403 (AuthenticationFailed)", None)

    async def body(listener: Listener) -> None:
        await started(fakes)

    run(fakes, body)
    errors = messages(caplog, logging.ERROR)
    assert len(errors) == 2
    assert errors[1] == ("The listener for function 'Functions.consume' is still unable to start.\n"
                         "Function 'consume' (binding 'msg'): the queue endpoint ... answered 403 "
                         "(AuthenticationFailed)")


def test_a_failing_start_is_retried_like_an_unreachable_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    fakes = Fakes(None, start_fails=1)

    async def body(listener: Listener) -> None:
        await started(fakes)

    run(fakes, body)
    assert "Function 'consume': starting its listener failed: ConnectionResetError: the storage closed the " \
           "connection" in messages(caplog, logging.ERROR)[0]
    assert fakes.starts == 2


def test_the_host_stopping_ends_the_retries() -> None:
    fakes = Fakes(DOWN)

    async def body(listener: Listener) -> None:
        await asyncio.sleep(0)   # let the retry task begin; the stack then closes the listener

    run(fakes, body)
    assert fakes.starts == 0 and fakes.stops == 1


def test_the_back_off_is_capped_at_thirty_seconds() -> None:
    listener = Listener("consume", [NEED], Fakes(None).start, Fakes(None).stop)
    delays = [listener.backoff.next() for _ in range(12)]
    assert delays[0] < 2 and delays == sorted(delays) and max(delays) == 30.0
