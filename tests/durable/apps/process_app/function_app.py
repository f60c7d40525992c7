"""Orchestrators run by tests/durable/test_orchestrator_process.py with `--orchestrator-process`: the
same results, logs and failures as in process, and a host that outlives its orchestrator process."""

import logging
import os
from datetime import datetime
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"{os.environ['GREETING']} {name}"


@app.orchestration_trigger(context_name="context")
def greet_all(context: df.DurableOrchestrationContext):
    names = context.get_input()
    if not context.is_replaying:
        logging.info("greeting %d names", len(names))
        print(f"orchestrator pid {os.getpid()}")
    greetings = []
    for name in names:
        greetings.append((yield context.call_activity("greet", name)))
    return greetings


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    decision = yield context.wait_for_external_event("Approval")
    return f"decided: {decision}"


@app.orchestration_trigger(context_name="context")
def fails(context: df.DurableOrchestrationContext):
    yield context.call_activity("greet", "first")
    raise ValueError("the order has no items")


@app.orchestration_trigger(context_name="context")
def exits_once(context: df.DurableOrchestrationContext):
    """Ends the process it runs in on its first episode (as a crash would); the next one completes."""
    marker = Path(context.get_input())
    if not marker.exists():
        marker.write_text("crashed once")
        os._exit(7)
    greeting = yield context.call_activity("greet", "again")
    return greeting


@app.orchestration_trigger(context_name="context")
def reads_the_clock(context: df.DurableOrchestrationContext):
    started = datetime.now()
    yield context.call_activity("greet", "clock")
    return started.year > 2000
