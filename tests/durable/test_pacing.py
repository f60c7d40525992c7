"""Episode pacing: only instances with activities in flight wait, never longer than their last episode."""

from funcemu.durable.pacing import EpisodePacer


def test_an_idle_instance_is_never_delayed() -> None:
    pacer = EpisodePacer()
    pacer.episode_done("a", 0.5, now=10.0)
    assert pacer.delay("a", now=10.0) == 0.0


def test_a_busy_instance_waits_as_long_as_its_last_episode() -> None:
    pacer = EpisodePacer()
    pacer.scheduled("a", 3)
    pacer.episode_done("a", 0.5, now=10.0)
    assert abs(pacer.delay("a", now=10.2) - 0.3) < 1e-9
    assert pacer.delay("a", now=10.6) == 0.0
    for _ in range(3):
        pacer.finished("a")
    assert pacer.delay("a", now=10.1) == 0.0


def test_completions_before_scheduling_do_not_leak() -> None:
    """With an async store, activities can finish before the checkpoint returns and `scheduled` runs."""
    pacer = EpisodePacer()
    pacer.finished("a")
    pacer.finished("a")
    pacer.scheduled("a", 2)
    pacer.episode_done("a", 5.0, now=0.0)
    assert not pacer.busy("a") and pacer.delay("a", now=0.0) == 0.0
