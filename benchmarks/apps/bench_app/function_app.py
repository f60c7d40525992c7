"""The benchmark app: the workloads of the Durable extension's own performance tests, kept minimal.

- `hello_cities`: five activities in sequence (the "HelloCities5" / "HelloSequence5" test).
- `chain`: `n` activities in sequence (per-hop latency).
- `fan_out`: `n` activities in parallel, then their sum (fan-out/fan-in).
- `wait_event`: waits for the `Wake` event (wake-up latency of an idle instance).
- `POST /api/start/{name}` starts an orchestration; `GET /api/ping` is a plain HTTP function.
"""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
CITIES = ["Tokyo", "Seattle", "London", "Cairo", "Lima"]


@app.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"


@app.activity_trigger(input_name="value")
def double(value: int) -> int:
    return value * 2


@app.activity_trigger(input_name="value")
def add_one(value: int) -> int:
    return value + 1


@app.orchestration_trigger(context_name="context")
def hello_cities(context: df.DurableOrchestrationContext):
    results = []
    for city in CITIES:
        results.append((yield context.call_activity("say_hello", city)))
    return results


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    value = 0
    for _ in range(context.get_input()):
        value = yield context.call_activity("add_one", value)
    return value


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    results = yield context.task_all([context.call_activity("double", i) for i in range(context.get_input())])
    return sum(results)


@app.orchestration_trigger(context_name="context")
def wait_event(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("Wake"))


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(
        req.route_params["name"], client_input=req.get_json() if body else None
    )
    return client.create_check_status_response(req, instance_id)


@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
