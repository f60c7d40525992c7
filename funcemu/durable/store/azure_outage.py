"""Riding out a storage outage (Azurite stopped and started again, a network blip).

The Azure SDKs retry a failed call a few times within seconds (`_STORAGE_RETRY` in azure.py). Work that
must not be lost once it has begun, such as an activity's result or the steps after a checkpoint's History
commit, goes through `until_reachable`, which keeps retrying a call that fails to reach the service (connection
refused or reset, no answer) for up to `OUTAGE_LIMIT` seconds. It logs one warning when storage goes away and
one line when it is back, instead of a traceback per attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

log = logging.getLogger("funcemu.durable")
T = TypeVar("T")

OUTAGE_LIMIT = 300.0     # seconds a call is retried before its error goes to the caller
FIRST_DELAY, MAX_DELAY = 0.1, 2.0
_UNAVAILABLE = {500, 502, 503, 504}


def is_transient(error: BaseException) -> bool:
    """The service was not reached or could not answer; the same call may well succeed later."""
    if isinstance(error, (ServiceRequestError, ServiceResponseError)):
        return True
    return isinstance(error, HttpResponseError) and error.status_code in _UNAVAILABLE


def describe(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


async def until_reachable(call: Callable[[], Awaitable[T]], what: str, limit: float = OUTAGE_LIMIT) -> T:
    """`await call()`, calling it again while storage is unreachable (up to `limit` seconds)."""
    deadline = time.monotonic() + limit
    delay, since = FIRST_DELAY, 0.0
    while True:
        try:
            result = await call()
        except Exception as error:
            left = deadline - time.monotonic()
            if not is_transient(error) or left <= 0:
                raise
            if not since:
                since = time.monotonic()
                log.warning("Azure Storage is unreachable while %s (%s); retrying until it answers", what,
                            describe(error))
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, MAX_DELAY)
            continue
        if since:
            log.warning("Azure Storage answers again: %s done after %.1f s", what, time.monotonic() - since)
        return result


class Reachability:
    """Polls that cannot reach storage receive nothing instead of failing: the dispatcher simply polls
    again at its interval. One warning when polls start failing, one when storage answers again."""

    def __init__(self) -> None:
        self._since = 0.0

    @property
    def down(self) -> bool:
        return bool(self._since)

    async def poll(self, call: Callable[[], Awaitable[T]], what: str) -> T | None:
        """`await call()`; None when storage was unreachable (other errors are raised)."""
        try:
            result = await call()
        except Exception as error:
            if not is_transient(error):
                raise
            if not self._since:
                self._since = time.monotonic()
                log.warning("Azure Storage is unreachable while %s (%s); polling again until it answers",
                            what, describe(error))
            return None
        if self._since:
            log.warning("Azure Storage answers again after %.1f s", time.monotonic() - self._since)
            self._since = 0.0
        return result
