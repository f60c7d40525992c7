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
    def __init__(self) -> None:
        self._in_flight: dict[str, int] = {}
        self._not_before: dict[str, float] = {}

    def scheduled(self, instance_id: str, count: int) -> None:
        """`count` activities of the instance were queued by this process."""
        if count > 0:
            self._in_flight[instance_id] = self._in_flight.get(instance_id, 0) + count

    def finished(self, instance_id: str) -> None:
        """One activity of the instance completed (or was abandoned)."""
        left = self._in_flight.get(instance_id, 0) - 1
        if left > 0:
            self._in_flight[instance_id] = left
        else:
            self._in_flight.pop(instance_id, None)
            self._not_before.pop(instance_id, None)

    def episode_done(self, instance_id: str, duration: float, now: float) -> None:
        if instance_id in self._in_flight:
            self._not_before[instance_id] = now + duration
        else:
            self._not_before.pop(instance_id, None)

    def delay(self, instance_id: str, now: float) -> float:
        """Seconds the instance's next episode should wait (0: run it now)."""
        if instance_id not in self._in_flight:
            return 0.0
        return max(0.0, self._not_before.get(instance_id, now) - now)
