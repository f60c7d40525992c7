"""Trigger listeners that start as the host starts them: unreachable storage does not stop the host.

When a listener cannot start, the host logs `The listener for function 'Functions.<name>' was unable to
start.` with the cause and keeps serving every other function. funcemu does the same, names the binding,
the connection setting and the endpoint, and then retries that listener in the background with a
capped back-off, so starting Azurite later just works; one line says when the listener has started.
Configuration problems (missing settings, bad schedules or options) are not retried: they stop startup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from funcemu.triggers.polling import Backoff
from funcemu.triggers.storage import StorageAccount, probe_problem

log = logging.getLogger("funcemu.triggers")
RETRY_MIN = 0.5     # seconds before the first retry; then the host's randomized doubling ...
RETRY_MAX = 30.0    # ... capped here

Probe = Callable[[StorageAccount, str], Awaitable[str | None]]


@dataclass(frozen=True)
class Need:
    """A storage service a listener cannot start without, and the binding (or purpose) that uses it."""

    binding: str
    account: StorageAccount
    service: str


class Listener:
    """One function's listener: started at once when its storage answers, else retried in the background."""

    def __init__(self, function: str, needs: Sequence[Need], start: Callable[[], Awaitable[None]],
                 stop: Callable[[], Awaitable[None]], *, backoff: Backoff | None = None,
                 probe: Probe = probe_problem) -> None:
        self.function, self.needs = function, tuple(needs)
        self._start, self._stop = start, stop
        self.backoff = backoff or Backoff(RETRY_MAX, minimum=RETRY_MIN)
        self._probe = probe   # fresh probes for the retries
        self._task: asyncio.Task[None] | None = None
        self.started = False

    @property
    def label(self) -> str:
        return f"Functions.{self.function}"

    async def open(self, stack: contextlib.AsyncExitStack, probe: Probe) -> None:
        """Start now, or log why not and keep trying; `probe` answers from the startup probes."""
        stack.push_async_callback(self.close)
        problem = await self._attempt(probe)
        if problem is None:
            return
        log.error("The listener for function '%s' was unable to start.\n%s funcemu keeps serving the other "
                  "functions and retries this listener in the background (at most every %g s).",
                  self.label, problem, self.backoff.maximum)
        self._task = asyncio.create_task(self._retry(problem), name=f"listener retry {self.label}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stop()

    async def _attempt(self, probe: Probe) -> str | None:
        """None once the listener runs; otherwise why it cannot start."""
        for need in self.needs:
            problem = await probe(need.account, need.service)
            if problem is not None:
                return f"Function '{self.function}' (binding '{need.binding}'): {problem}"
        try:
            await self._start()
        except Exception as exc:  # storage that answered the probe failed the listener's own first calls
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            return f"Function '{self.function}': starting its listener failed: {type(exc).__name__}: {first_line}"
        self.started = True
        return None

    async def _retry(self, problem: str) -> None:
        """Fresh probes at growing intervals; a changed cause is logged again, the same one only at debug."""
        attempts = 1
        while True:
            await asyncio.sleep(self.backoff.next())
            attempts += 1
            latest = await self._attempt(self._probe)
            if latest is None:
                log.warning("The listener for function '%s' has started (attempt %d): its storage answers now.",
                            self.label, attempts)  # a warning, so it shows wherever the error showed
                return
            if latest != problem:
                log.error("The listener for function '%s' is still unable to start.\n%s", self.label, latest)
                problem = latest
            else:
                log.debug("The listener for function '%s' is still unable to start (attempt %d).", self.label,
                          attempts)
