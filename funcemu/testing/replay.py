"""Replay recorded orchestration histories against the current code, from a test.

    from funcemu.testing.replay import replay_history

    def test_in_flight_approvals_survive_the_change():
        replay_history(".", "tests/data/approval-history.json")  # raises HistoryDiverged on divergence

The history is funcemu's export (`funcemu durable get-history ID --output FILE`) or the JSON of the
management API's `GET instances/{id}?showHistory=true&showHistoryOutput=true&showInput=true` from any
host, as a path or an already parsed dict. The replay runs in the test process, through the same
code path as the host, and reports divergence in the host's words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from funcemu.durable.recording import HistoryFileError
from funcemu.durable.replayer import ReplayError, ReplayReport, replay_file

__all__ = ["HistoryDiverged", "HistoryFileError", "ReplayError", "ReplayReport", "replay_history"]


class HistoryDiverged(AssertionError):
    """The code no longer does what the recorded history did; `report` has the details."""

    __test__ = False

    def __init__(self, report: ReplayReport) -> None:
        super().__init__(str(report))
        self.report = report


def replay_history(app: str | Path, history: str | Path | dict[str, Any], *, orchestrator: str | None = None,
                   raise_on_divergence: bool = True) -> ReplayReport:
    """Replay `history` against the app in `app`; with `orchestrator`, the history must come from it.

    Returns the report; raises `HistoryDiverged` when the code diverges (unless `raise_on_divergence`
    is false), `HistoryFileError` when `history` is not a history, and `ReplayError` when the app has no
    orchestrator of the recorded name. local.settings.json is not applied to the test's environment.
    """
    report = replay_file(Path(app), history, orchestrator=orchestrator, apply_settings=False)
    if raise_on_divergence and not report.ok:
        raise HistoryDiverged(report)
    return report
