"""A durable app exercising every orchestration feature; driven by tests/durable/test_engine_e2e.py."""

import json
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
ATTEMPTS: dict[str, int] = {}


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
        return f"caught: {str(exc)[:60]}"
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


@app.orchestration_trigger(context_name="context")
def bad_output(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "x")
    return object()


@app.orchestration_trigger(context_name="context")
def short_timer(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=context.get_input() or 1))
    return context.current_utc_datetime.isoformat()


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
    result = await _client_call(client, op, instance_id, args)
    return func.HttpResponse(json.dumps(result, default=str), mimetype="application/json")


async def _client_call(client: df.DurableOrchestrationClient, op: str, instance_id: str, args: dict):
    if op == "status":
        status = await client.get_status(instance_id, show_history=args.get("history", False),
                                         show_history_output=args.get("output", False),
                                         show_input=args.get("input", False))
        return status.to_json() if status else None
    if op == "all":
        return [s.to_json() for s in await client.get_status_all()]
    if op == "by":
        statuses = [df.OrchestrationRuntimeStatus(s) for s in args.get("statuses", [])] or None
        return [s.to_json() for s in await client.get_status_by(runtime_status=statuses)]
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
