"""Episode pacing for instances with activities in flight: batch their completions.

An episode replays the whole history, so its cost grows with the history. If an instance with many
activities in flight ran an episode for every few completions, a fan-in of N would take N / pool-size
episodes of O(N) each: quadratic. Instead, while an instance has activities in flight, its next episode
waits as long as its last episode took (a 50 % duty cycle): each episode then applies a number of
results proportional to the replay cost, and a fan-in of N takes O(log N) episodes. Instances with
nothing in flight (chains, timers, events) are never delayed.
"""

from __future__ import annotations


class EpisodePacer:
    """A net count of activities in flight per instance. It may dip below zero for a moment: with a
    store whose checkpoint awaits I/O, activities can finish before `scheduled` is called."""

    def __init__(self) -> None:
        self._in_flight: dict[str, int] = {}
        self._not_before: dict[str, float] = {}

    def _add(self, instance_id: str, delta: int) -> None:
        count = self._in_flight.get(instance_id, 0) + delta
        if count:
            self._in_flight[instance_id] = count
        else:
            self._in_flight.pop(instance_id, None)
        if count <= 0:
            self._not_before.pop(instance_id, None)

    def scheduled(self, instance_id: str, count: int) -> None:
        """`count` activities of the instance were queued by this process."""
        if count > 0:
            self._add(instance_id, count)

    def finished(self, instance_id: str) -> None:
        """One activity of the instance completed (or was abandoned)."""
        self._add(instance_id, -1)

    def busy(self, instance_id: str) -> bool:
        return self._in_flight.get(instance_id, 0) > 0

    def episode_done(self, instance_id: str, duration: float, now: float) -> None:
        if self.busy(instance_id):
            self._not_before[instance_id] = now + duration
        else:
            self._not_before.pop(instance_id, None)

    def delay(self, instance_id: str, now: float) -> float:
        """Seconds the instance's next episode should wait (0: run it now)."""
        if not self.busy(instance_id):
            return 0.0
        return max(0.0, self._not_before.get(instance_id, now) - now)
