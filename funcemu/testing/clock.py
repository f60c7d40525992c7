"""The emulator's clock, seen from a test: read it, move it forward, let it skip (`/admin/funcemu/clock`).

The plugin starts funcemu with `--time-skipping` and turns automatic skipping off for each test: the
clock then jumps to the next durable timer only while the test waits for a result
(`DurableClient.wait_for_completion` wraps its wait in `auto_skipping()`), or when the test calls
`advance()`. Timers still fire when real time reaches them. Only funcemu has this endpoint; elsewhere
the `clock` fixture skips the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from funcemu.testing.client import DurableApiError
from funcemu.testing.httpclient import HttpClient

CLOCK_PATH = "/admin/funcemu/clock"


class Clock:
    __test__ = False

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def available(self) -> bool:
        """Whether the host has clock control at all (it answers 404 when not)."""
        return self.http.get(CLOCK_PATH).status == 200

    @property
    def supports_time_skipping(self) -> bool:
        return bool(self._read().get("timeSkipping"))

    def now(self) -> datetime:
        return _parse(self._read()["now"])

    def advance(self, by: timedelta | float) -> datetime:
        """Move the clock forward by `by` (a timedelta or seconds); returns the new time.

        Durable timers that become due fire at once, as they would after waiting that long.
        """
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        response = self.http.post(f"{CLOCK_PATH}/advance", params={"seconds": f"{seconds:g}"})
        if response.status != 200:
            raise DurableApiError(f"advance the clock by {seconds:g} s", response)
        body = response.json()
        return self.now() if not isinstance(body, dict) or "now" not in body else _parse(body["now"])

    def set_auto_skip(self, enabled: bool) -> None:
        """Let the clock jump to the next timer whenever nothing else can run (or stop it doing so)."""
        response = self.http.post(f"{CLOCK_PATH}/autoskip", params={"enabled": str(enabled).lower()})
        if response.status != 200:
            raise DurableApiError(f"turn automatic time skipping {'on' if enabled else 'off'}", response)

    @contextmanager
    def auto_skipping(self) -> Iterator[None]:
        """Skip time automatically inside the block, then go back to what it was."""
        before = bool(self._read().get("autoSkip"))
        self.set_auto_skip(True)
        try:
            yield
        finally:
            self.set_auto_skip(before)

    def _read(self) -> dict[str, object]:
        response = self.http.get(CLOCK_PATH)
        if response.status != 200:
            raise DurableApiError("read the clock", response)
        body = response.json()
        if not isinstance(body, dict):
            raise DurableApiError("read the clock (expected a JSON object)", response)
        return body


def _parse(text: object) -> datetime:
    """ISO 8601 with a Z and up to 7 fractional digits (the host's format), on Python 3.10 too."""
    value = re.sub(r"\.(\d+)", lambda digits: "." + (digits.group(1) + "000000")[:6], str(text))
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
