"""Orchestrators that break (or respect) replay determinism; driven by tests/durable/test_determinism.py."""

import random
import uuid
from datetime import datetime, timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
RUNS: dict[str, int] = {}


@app.activity_trigger(input_name="value")
def step_a(value: int) -> int:
    return value + 1


@app.activity_trigger(input_name="value")
def step_b(value: int) -> int:
    return value + 2


@app.orchestration_trigger(context_name="context")
def drifting(context: df.DurableOrchestrationContext):
    """Deliberately non-deterministic: what it schedules first depends on how often it has run, as it
    would on a clock, a random number or a global."""
    RUNS[context.instance_id] = RUNS.get(context.instance_id, 0) + 1
    first = "step_a" if RUNS[context.instance_id] == 1 else "step_b"
    value = yield context.call_activity(first, 1)
    value = yield context.call_activity("step_a", value)
    return value


@app.orchestration_trigger(context_name="context")
def sloppy(context: df.DurableOrchestrationContext):
    """Calls non-deterministic APIs on every replay, but decides nothing from them, so it completes."""
    started = datetime.now()
    token = uuid.uuid4()
    dice = random.randint(1, 6)
    value = yield context.call_activity("step_a", 1)
    value = yield context.call_activity("step_b", value)
    return {"value": value, "seen": [started.isoformat(), str(token), dice]}


@app.orchestration_trigger(context_name="context")
def careful(context: df.DurableOrchestrationContext):
    """The replay-safe way: the context's clock and ids; a seeded generator of its own; wall-clock time
    only outside replay (for a log line, say)."""
    rng = random.Random(context.instance_id)
    if not context.is_replaying:
        datetime.now()
    deadline = context.current_utc_datetime + timedelta(seconds=rng.randint(1, 5))
    value = yield context.call_activity("step_a", 1)
    value = yield context.call_activity("step_b", value)
    return {"value": value, "id": str(context.new_uuid()), "deadline": deadline.isoformat()}
