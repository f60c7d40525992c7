"""A durable app exercising every orchestration feature; driven by tests/durable/test_e2e_*.py."""

import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
ATTEMPTS: dict[str, int] = {}
POLLS: dict[str, int] = {}
GATE_WAIT_SECONDS = 30.0


@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    return f"Hello {name}"


@app.activity_trigger(input_name="value")
async def double(value: int) -> int:
    return value * 2


@app.activity_trigger(input_name="key")
def flaky(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise ValueError(f"attempt {ATTEMPTS[key]} failed")
    return f"ok after {ATTEMPTS[key]}"


@app.activity_trigger(input_name="message")
def boom(message: str) -> str:
    raise ValueError(message)


@app.activity_trigger(input_name="key")
def fails_once(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        raise ValueError(f"first try of {key} fails")
    return f"{key} ok on try {ATTEMPTS[key]}"


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    cities = context.get_input() or ["Tokyo", "Seattle", "London"]
    results = []
    for city in cities:
        results.append((yield context.call_activity("hello", city)))
    return results


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = context.get_input()
    values = yield context.task_all([context.call_activity("double", i) for i in range(count)])
    return sum(values)


@app.orchestration_trigger(context_name="context")
def wait_event(context: df.DurableOrchestrationContext):
    seconds = (context.get_input() or {}).get("timeout", 3600)
    deadline = context.current_utc_datetime + timedelta(seconds=seconds)
    timer = context.create_timer(deadline)
    event = context.wait_for_external_event("Approval")
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return {"approved": event.result}
    return "timed out"


@app.orchestration_trigger(context_name="context")
def two_events(context: df.DurableOrchestrationContext):
    first = yield context.wait_for_external_event("E")
    second = yield context.wait_for_external_event("E")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def retry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=10, max_number_of_attempts=3)
    return (yield context.call_activity_with_retry("flaky", options, context.instance_id))


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("boom", context.get_input() or "kaboom"))


@app.orchestration_trigger(context_name="context")
def raising(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "x")
    raise RuntimeError("orchestrator went wrong")


@app.orchestration_trigger(context_name="context")
def missing_activity(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("no_such_activity", 1)
    except Exception as exc:
        return f"caught: {exc}"
    return "not caught"


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    child = yield context.call_sub_orchestrator("chain", ["A", "B"])
    return {"child": child}


@app.orchestration_trigger(context_name="context")
def counter_loop(context: df.DurableOrchestrationContext):
    n = context.get_input() or 0
    context.set_custom_status({"n": n})
    if n >= 3:
        return n
    yield context.call_activity("double", n)
    context.continue_as_new(n + 1)


@app.orchestration_trigger(context_name="context")
def progress(context: df.DurableOrchestrationContext):
    steps = context.get_input() or 3
    for step in range(1, steps + 1):
        yield context.call_activity("double", step)
        context.set_custom_status({"step": step, "of": steps})
    return "done"


@app.orchestration_trigger(context_name="context")
def uses_entity(context: df.DurableOrchestrationContext):
    entity = df.EntityId("counter", context.get_input() or "k")
    context.signal_entity(entity, "add", 5)
    value = yield context.call_entity(entity, "get")
    return value


@app.orchestration_trigger(context_name="context")
def entity_error(context: df.DurableOrchestrationContext):
    entity = df.EntityId("counter", context.get_input())
    try:
        yield context.call_entity(entity, "add", "not a number")
    except Exception as exc:
        return f"caught: {exc}"
    return "not caught"


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext):
    current = context.get_state(lambda: 0)
    if context.operation_name == "add":
        current += context.get_input()
        context.set_state(current)
    elif context.operation_name == "get":
        context.set_result(current)
    elif context.operation_name == "reset":
        context.set_state(0)
    elif context.operation_name == "set":
        context.set_state(context.get_input())
    elif context.operation_name == "delete":
        context.destruct_on_exit()


@app.orchestration_trigger(context_name="context")
def bad_output(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "x")
    return object()


@app.orchestration_trigger(context_name="context")
def short_timer(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=context.get_input() or 1))
    return context.current_utc_datetime.isoformat()


@app.orchestration_trigger(context_name="context")
def rewindable(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("hello", "before")
    second = yield context.call_activity("fails_once", context.instance_id)
    return [first, second]


@app.orchestration_trigger(context_name="context")
def rewindable_parent(context: df.DurableOrchestrationContext):
    return (yield context.call_sub_orchestrator("rewindable", None, f"{context.instance_id}-child"))


@app.orchestration_trigger(context_name="context")
def status_then_wait(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting"})
    answer = yield context.wait_for_external_event("Go")
    context.set_custom_status({"stage": "done", "answer": answer})
    return answer


@app.orchestration_trigger(context_name="context")
def big_status(context: df.DurableOrchestrationContext):
    context.set_custom_status("x" * context.get_input())
    return (yield context.call_activity("hello", "status"))


@app.orchestration_trigger(context_name="context")
def missing_child(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("no_such_orchestrator", 1)
    except Exception as exc:
        return f"caught: {exc}"
    return "not caught"


@app.orchestration_trigger(context_name="context")
def not_a_task(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "x")
    yield 42


@app.orchestration_trigger(context_name="context")
def retry_exhausted(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=10, max_number_of_attempts=2)
    return (yield context.call_activity_with_retry("boom", options, "always"))


@app.orchestration_trigger(context_name="context")
def catches_child(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("failing", "child broke", f"{context.instance_id}-child")
    except Exception as exc:
        return f"caught: {exc}"
    return "not caught"


@app.orchestration_trigger(context_name="context")
def timer_then_event(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=context.get_input() or 0.5))
    return (yield context.wait_for_external_event("Early"))


@app.orchestration_trigger(context_name="context")
def http_caller(context: df.DurableOrchestrationContext):
    response = yield context.call_http("POST", context.get_input(), content={"job": context.instance_id})
    return {"statusCode": response["statusCode"], "content": json.loads(response["content"])}


@app.route(route="resource/{token}", methods=["POST"])
def resource(req: func.HttpRequest) -> func.HttpResponse:
    """A long-running operation: POST answers 202 + Location; the status URL answers 202 twice, then 200."""
    POLLS[req.route_params["token"]] = 0
    status_url = req.url.split("?")[0].rstrip("/") + "/status"
    return func.HttpResponse(status_code=202, headers={"Location": status_url, "Retry-After": "0"})


@app.route(route="resource/{token}/status", methods=["GET"])
def resource_status(req: func.HttpRequest) -> func.HttpResponse:
    token = req.route_params["token"]
    POLLS[token] = POLLS.get(token, 0) + 1
    if POLLS[token] < 3:
        return func.HttpResponse(status_code=202, headers={"Location": req.url, "Retry-After": "0"})
    return func.HttpResponse(json.dumps({"token": token, "polls": POLLS[token]}), mimetype="application/json")


@app.activity_trigger(input_name="key")
def gated(key: str) -> str:
    """Records each run, then waits (bounded) until the test opens the gate: an activity in flight."""
    folder = os.environ.get("E2E_GATE_DIR")
    if not folder:
        return f"passed {key}"
    with open(Path(folder) / "runs.log", "a") as runs:
        runs.write(key + "\n")
    deadline = time.monotonic() + GATE_WAIT_SECONDS
    while not (Path(folder) / "open").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return f"passed {key}"


@app.orchestration_trigger(context_name="context")
def durable_steps(context: df.DurableOrchestrationContext):
    key = context.get_input()
    first = yield context.call_activity("double", 1)
    second = yield context.call_activity("double", first)
    gate = yield context.call_activity("gated", key)
    fanned = yield context.task_all([context.call_activity("double", i) for i in range(5)])
    child = yield context.call_sub_orchestrator("chain", [key])
    return {"chain": [first, second], "gate": gate, "fan": sum(fanned), "child": child}


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["name"], req.params.get("id"),
                                         json.loads(body) if body else None)
    return client.create_check_status_response(req, instance_id)


@app.route(route="client/{op}/{instance_id?}", methods=["GET", "POST", "DELETE"])
@app.durable_client_input(client_name="client")
async def client_op(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Runs one SDK client call and reports what it returned, for the tests."""
    op, instance_id = req.route_params["op"], req.route_params.get("instance_id")
    args = req.get_json() if req.get_body() else {}
    if op == "wait":
        return await client.wait_for_completion_or_create_check_status_response(
            req, instance_id, timeout_in_milliseconds=args.get("timeout", 10000),
            retry_interval_in_milliseconds=100)
    if op == "payload":
        return func.HttpResponse(json.dumps(client.create_http_management_payload(instance_id)),
                                 mimetype="application/json")
    if op == "check":
        return client.create_check_status_response(req, instance_id)
    try:
        result = await _client_call(client, op, instance_id, args)
    except Exception as exc:  # the SDK's own error, reported to the test verbatim
        body = {"error": str(exc), "type": type(exc).__name__}
        return func.HttpResponse(json.dumps(body), status_code=500, mimetype="application/json")
    return func.HttpResponse(json.dumps(result, default=str), mimetype="application/json")


async def _client_call(client: df.DurableOrchestrationClient, op: str, instance_id: str, args: dict):
    if op == "start":
        return await client.start_new(args["name"], instance_id, args.get("input"))
    if op == "status":
        status = await client.get_status(instance_id, show_history=args.get("history", False),
                                         show_history_output=args.get("output", False),
                                         show_input=args.get("input", False))
        if not status:
            return None
        return {**status.to_json(), "historyEvents": getattr(status, "historyEvents", None)}
    if op == "all":
        return [s.to_json() for s in await client.get_status_all()]
    if op == "by":
        statuses = [df.OrchestrationRuntimeStatus(s) for s in args.get("statuses", [])] or None
        found = await client.get_status_by(runtime_status=statuses, instance_id_prefix=args.get("prefix"))
        return [s.to_json() for s in found]
    if op == "purge_by":
        statuses = [df.OrchestrationRuntimeStatus(s) for s in args.get("statuses", [])] or None
        since = datetime.fromisoformat(args["since"])
        return (await client.purge_instance_history_by(since, runtime_status=statuses)).instances_deleted
    if op == "raise":
        await client.raise_event(instance_id, args["name"], args.get("data"))
        return "raised"
    if op == "terminate":
        await client.terminate(instance_id, args.get("reason", "by test"))
        return "terminated"
    if op == "suspend":
        await client.suspend(instance_id, "pause")
        return "suspended"
    if op == "resume":
        await client.resume(instance_id, "go on")
        return "resumed"
    if op == "rewind":
        await client.rewind(instance_id, "try again")
        return "rewound"
    if op == "restart":
        return await client.restart(instance_id, args.get("new_id", True))
    if op == "purge":
        return (await client.purge_instance_history(instance_id)).instances_deleted
    if op == "signal":
        await client.signal_entity(df.EntityId("counter", instance_id), args["op"], args.get("input"))
        return "signaled"
    if op == "read":
        state = await client.read_entity_state(df.EntityId("counter", instance_id))
        return {"exists": state.entity_exists, "state": state.entity_state}
    raise ValueError(f"unknown op {op}")
