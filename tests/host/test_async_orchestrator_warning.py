"""An `async def` orchestrator indexes (as in the real host) but gets one clear warning."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from funcemu.app import load_app

ASYNC_APP = """
import azure.durable_functions as df
app = df.DFApp()

@app.orchestration_trigger(context_name="context")
async def bad_orch(context):
    return await context.call_activity("act", 1)

@app.orchestration_trigger(context_name="context")
def good_orch(context):
    return (yield context.call_activity("act", 1))

@app.activity_trigger(input_name="x")
async def act(x):
    return x
"""


def test_async_orchestrator_is_indexed_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "function_app.py").write_text(textwrap.dedent(ASYNC_APP))
    with caplog.at_level(logging.WARNING, logger="funcemu.app"):
        indexed = load_app(tmp_path)
    assert {f.name for f in indexed.functions} == {"bad_orch", "good_orch", "act"}
    assert not indexed.errors
    warnings = [r.getMessage() for r in caplog.records if r.name == "funcemu.app" and "async def" in r.getMessage()]
    assert warnings == [
        "Orchestrator function 'bad_orch' is an async def function; Durable Functions orchestrators for Python "
        "must be generator functions (def with yield) — it will fail when it runs."]
