"""The reference app: the four Durable Functions patterns, plus an endpoint that shows any orchestration.

Runs unchanged on `funcemu start`, `func start` and Azure. The patterns live in blueprints:
`orchestrators/` holds the HTTP starters and the orchestrators, `activities/` the activities.
Two blueprints there use Azure Storage (AzureWebJobsStorage): a queue of orders that starts the
chaining workflow, and word-count reports kept in blobs. Without storage they cannot work, and the
rest of the app runs as usual.
"""

import json

import azure.durable_functions as df
import azure.functions as func

import activities
import orchestrators

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in [*orchestrators.blueprints, *activities.blueprints]:
    app.register_functions(blueprint)


@app.route(route="orchestrations/{instanceId}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def get_orchestration(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The status of any orchestration with its full history, outputs included; 404 for an unknown id."""
    instance_id = req.route_params["instanceId"]
    status = await client.get_status(instance_id, show_history=True, show_history_output=True)
    if not status:
        body = {"error": f"no orchestration has the id {instance_id!r}"}
        return func.HttpResponse(json.dumps(body), status_code=404, mimetype="application/json")
    body = status.to_json()
    body.pop("history", None)  # the host sends the history as "historyEvents", kept as is below
    body["historyEvents"] = getattr(status, "historyEvents", [])
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
