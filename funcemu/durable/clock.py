"""Real or virtual time. Everything durable reads time through a Clock.

`VirtualClock` starts at the real time and moves only when told: `advance(delta)` by hand, or
`jump_to(t)`, which the engine calls when nothing is runnable but timers and skipping is allowed.
Skipping is allowed always (`funcemu start --time-skipping`) or only while a test waits for a
result (the pytest plugin turns `auto_skip` on around waits).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    supports_time_skipping: bool

    def now(self) -> datetime: ...

    def seconds_until(self, when: datetime) -> float:
        """Real seconds to sleep until `when` (0 when due); a virtual clock never sleeps for timers."""


class RealClock:
    supports_time_skipping = False

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def seconds_until(self, when: datetime) -> float:
        return max(0.0, (when - self.now()).total_seconds())


class VirtualClock:
    """Virtual time = real time + offset; the offset only grows."""

    supports_time_skipping = True

    def __init__(self, auto_skip: bool = True) -> None:
        self.offset = timedelta(0)
        self.auto_skip = auto_skip

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def seconds_until(self, when: datetime) -> float:
        """Virtual timers also fire when real time catches up (skipping may be off)."""
        return max(0.0, (when - self.now()).total_seconds())

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError(f"the clock only moves forward; got {delta}")
        self.offset += delta
        return self.now()

    def jump_to(self, when: datetime) -> None:
        gap = when - self.now()
        if gap > timedelta(0):
            self.offset += gap

    def reset(self) -> None:
        self.offset = timedelta(0)
