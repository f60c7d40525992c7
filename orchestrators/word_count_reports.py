"""Word-count reports in Blob Storage, written and read through blob bindings.

    POST /api/word-counts/{instanceId}/report   writes the summary of a completed word count (the
                                                fan-out/fan-in pattern) to blob reports/{instanceId}.json:
                                                201 with the report, 404 for an unknown id, 409 while it
                                                has not completed
    GET  /api/word-counts/{instanceId}/report   that blob: 200, or 404 when no report was written

Both blob paths take `{instanceId}` from the route. This needs Azure Storage (`AzureWebJobsStorage`;
Azurite locally); the word-count orchestration itself never touches storage.
"""

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from orchestrators import inputs

bp = df.Blueprint()

ROUTE = "word-counts/{instanceId}/report"
BLOB_PATH = "reports/{instanceId}.json"
WORKFLOW = "word_count_workflow"


@bp.route(route=ROUTE, methods=["POST"])
@bp.durable_client_input(client_name="client")
@bp.blob_output(arg_name="report", path=BLOB_PATH, connection="AzureWebJobsStorage")
async def write_word_count_report(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, report: func.Out[str]
) -> func.HttpResponse:
    instance_id = req.route_params["instanceId"]
    status = await client.get_status(instance_id)
    if not status or status.name != WORKFLOW:
        return inputs.error_response(404, f"no word count has the id {instance_id!r}")
    if status.runtime_status != df.OrchestrationRuntimeStatus.Completed:
        state = getattr(status.runtime_status, "name", status.runtime_status)
        return inputs.error_response(
            409, f"word count {instance_id!r} is {state}: only a completed word count has a report"
        )
    document = report_document(status.to_json())
    report.set(json.dumps(document))
    location = req.url.split("?", 1)[0]  # the GET of the same route; the key stays out of it
    return func.HttpResponse(
        json.dumps(document), status_code=201, mimetype="application/json", headers={"Location": location}
    )


def report_document(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "instanceId": status["instanceId"],
        "createdTime": status.get("createdTime"),
        "completedTime": status.get("lastUpdatedTime"),
        "summary": status.get("output"),
    }


@bp.route(route=ROUTE, methods=["GET"])
@bp.blob_input(arg_name="report", path=BLOB_PATH, connection="AzureWebJobsStorage")
def read_word_count_report(req: func.HttpRequest, report: func.InputStream) -> func.HttpResponse:
    if report is None:  # the host passes None when the blob does not exist
        instance_id = req.route_params["instanceId"]
        path = f"/api/word-counts/{instance_id}/report"
        return inputs.error_response(
            404, f"no report for word count {instance_id!r} yet: POST {path} writes it"
        )
    return func.HttpResponse(report.read(), mimetype="application/json")
