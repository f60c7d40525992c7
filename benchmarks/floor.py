"""The two baselines of every durable workload, measured on what the engine actually did.

SDK floor: split each finished instance's history into the episodes the engine ran, rebuild the
document the SDK handler receives for each (durable-protocol.md §2.1: every earlier event marked
played, then this episode's OrchestratorStarted and new events), and time nothing but the handler
call. Any host that runs this SDK pays at least this for the same episodes.

Direct calls: call the app's activity functions, with the inputs found in the history, in a loop.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from funcemu.durable import orchestrator
from funcemu.durable.history import played

Event = dict[str, Any]
ORCHESTRATOR_STARTED = 12
EXECUTION_STARTED = 0
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
# What an episode appends after its new events: its decisions, its completion, OrchestratorCompleted.
_AFTER_NEW = {TASK_SCHEDULED, 1, 7, 10, 13, 14}


@dataclass
class Episode:
    instance_id: str
    past: list[Event]
    new: list[Event]  # OrchestratorStarted followed by the messages it delivered


@dataclass
class Floor:
    seconds: float  # handler time over every episode (estimated from a sample when `sampled`)
    cpu: float  # the same in process CPU time (less sensitive to other load on the machine)
    episodes: int
    events: int  # history events the handler parsed, summed over episodes
    sampled: bool = False
    timed_episodes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "cpu": self.cpu,
            "episodes": self.episodes,
            "events": self.events,
            "sampled": self.sampled,
            "timed_episodes": self.timed_episodes,
        }


def episodes(instance_id: str, history: list[Event]) -> list[Episode]:
    """The (past, new) pairs the engine handed to the SDK, in order."""
    starts = [i for i, event in enumerate(history) if event["EventType"] == ORCHESTRATOR_STARTED]
    found = []
    for start in starts:
        end = start + 1
        while end < len(history) and history[end]["EventType"] not in _AFTER_NEW | {ORCHESTRATOR_STARTED}:
            end += 1
        found.append(Episode(instance_id, history[:start], history[start:end]))
    return found


def context_document(episode: Episode) -> str:
    """The handler's input (§2.1), built by the engine's own function from the episode's events."""
    history = played(episode.past) + episode.new
    started = next(event for event in history if event["EventType"] == EXECUTION_STARTED)
    return orchestrator.context_document(history, episode.instance_id, None, started)


def sdk_floor(
    handler: Callable[[str], Any], all_episodes: list[Episode], *, budget: float, passes: int = 1
) -> Floor:
    """Time `handler` on each episode's document (built outside the timed region).

    Up to `passes` whole passes while they fit in `budget` seconds; the median pass counts. When
    one pass does not fit, the episodes timed so far (spread evenly over the list) are scaled up by
    event count: the handler's cost grows with the history it parses.
    """
    sizes = [len(e.past) + len(e.new) for e in all_episodes]
    total_events = sum(sizes)
    totals: list[tuple[float, float]] = []
    started = time.perf_counter()
    for _ in range(passes):
        gc.collect()
        spent, cpu, timed_events, timed = 0.0, 0.0, 0, 0
        for index in _spread(len(all_episodes)):
            document = context_document(all_episodes[index])
            begin, begin_cpu = time.perf_counter(), time.process_time()
            try:
                handler(document)
            except Exception:  # noqa: S110 - the SDK raises to report an orchestrator failure; still paid
                pass
            spent, cpu = spent + time.perf_counter() - begin, cpu + time.process_time() - begin_cpu
            timed_events, timed = timed_events + sizes[index], timed + 1
            if time.perf_counter() - started > budget and timed < len(all_episodes):
                scale = total_events / max(timed_events, 1)
                return Floor(
                    spent * scale,
                    cpu * scale,
                    len(all_episodes),
                    total_events,
                    sampled=True,
                    timed_episodes=timed,
                )
        totals.append((spent, cpu))
        if (time.perf_counter() - started) * (len(totals) + 1) / len(totals) > budget:
            break
    seconds, cpu = sorted(totals)[len(totals) // 2]
    return Floor(seconds, cpu, len(all_episodes), total_events, timed_episodes=len(all_episodes))


def _spread(count: int) -> Iterator[int]:
    """0..count-1, coarse to fine (0, 8, 16, ..., 4, 12, ...), so any prefix samples the whole list."""
    step = 1
    while step * 2 <= count:
        step *= 2
    seen: set[int] = set()
    while step >= 1:
        for index in range(0, count, step):
            if index not in seen:
                seen.add(index)
                yield index
        step //= 2


def activity_calls(history: list[Event]) -> list[tuple[str, Any]]:
    """(activity name, decoded input) of every TaskScheduled in a history."""
    calls = []
    for event in history:
        if event["EventType"] == TASK_SCHEDULED:
            stored = event.get("Input")
            text = json.loads(stored)[0] if stored else None
            calls.append((event["Name"], None if text is None else json.loads(text)))
    return calls


def direct_calls(functions: dict[str, tuple[Callable[..., Any], str]], calls: list[tuple[str, Any]]) -> float:
    """Seconds to call each activity's user function directly, in a loop (median of three passes)."""
    prepared = [(functions[name.lower()], value) for name, value in calls]
    passes = []
    for _ in range(3):
        begin = time.perf_counter()
        for (function, argument), value in prepared:
            function(**{argument: value})
        passes.append(time.perf_counter() - begin)
    return sorted(passes)[1]
