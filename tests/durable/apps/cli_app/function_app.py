"""Orchestrators for the `funcemu durable` verbs; driven by tests/durable/test_durable_cli.py."""

from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
ATTEMPTS: dict[str, int] = {}


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"Hello {name}"


@app.activity_trigger(input_name="key")
def fails_first(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        raise RuntimeError("the first attempt fails")
    return f"attempt {ATTEMPTS[key]}"


@app.orchestration_trigger(context_name="context")
def hello(context: df.DurableOrchestrationContext):
    greetings = []
    for name in context.get_input() or ["Tokyo"]:
        greetings.append((yield context.call_activity("greet", name)))
    return greetings


@app.orchestration_trigger(context_name="context")
def nap(context: df.DurableOrchestrationContext):
    """Sleeps two (virtual) hours, then greets."""
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=2))
    return (yield context.call_activity("greet", "after the nap"))


@app.orchestration_trigger(context_name="context")
def await_go(context: df.DurableOrchestrationContext):
    data = yield context.wait_for_external_event("Go")
    return {"got": data}


@app.orchestration_trigger(context_name="context")
def flaky(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("fails_first", context.instance_id))
