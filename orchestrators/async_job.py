"""Async HTTP API: a long-running export job that reports its progress through the custom status.

The starter answers 202 at once with the management URLs; the caller polls `statusQueryGetUri`, which
answers 202 with the progress in `customStatus` while the job runs, and 200 with the result at the end.
`throttleSeconds` waits on a durable timer between batches (a rate limit of the downstream system).

    POST /api/exports  {"dataset": "customers", "records": 1200, "batchSize": 500, "throttleSeconds": 0}
"""

import re
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from orchestrators import inputs

bp = df.Blueprint()

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
MAX_BATCHES = 1000


@bp.route(route="exports", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_export(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        job = read_job(inputs.json_object(req))
    except inputs.InputError as error:
        return inputs.bad_request(error)
    instance_id = await client.start_new("export_workflow", client_input=job)
    return client.create_check_status_response(req, instance_id)


def read_job(body: dict[str, Any]) -> dict[str, Any]:
    dataset = inputs.text(body, "dataset", max_length=63)
    if not DATASET_NAME.match(dataset):
        raise inputs.InputError(f"dataset must match {DATASET_NAME.pattern}, got {dataset!r}")
    job = {
        "dataset": dataset,
        "records": inputs.integer(body, "records", low=1, high=10_000_000),
        "batchSize": inputs.integer(body, "batchSize", low=1, high=100_000, default=1000),
        "throttleSeconds": inputs.number(body, "throttleSeconds", low=0, high=3600, default=0),
    }
    if batch_count(job) > MAX_BATCHES:
        raise inputs.InputError(
            f"records / batchSize gives {batch_count(job)} batches; "
            f"the limit is {MAX_BATCHES}, so use a larger batchSize"
        )
    return job


def batch_count(job: dict[str, Any]) -> int:
    return -(-job["records"] // job["batchSize"])


def progress(job: dict[str, Any], done_batches: int, exported: int, stage: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "completedBatches": done_batches,
        "totalBatches": batch_count(job),
        "exportedRecords": exported,
        "totalRecords": job["records"],
        "percentComplete": exported * 100 // job["records"],
    }


@bp.orchestration_trigger(context_name="context")
def export_workflow(context: df.DurableOrchestrationContext):
    job = context.get_input()
    exported = 0
    context.set_custom_status(progress(job, 0, exported, "exporting"))
    for batch in range(batch_count(job)):
        if batch and job["throttleSeconds"]:
            pause = timedelta(seconds=job["throttleSeconds"])
            yield context.create_timer(context.current_utc_datetime + pause)
        first = batch * job["batchSize"]
        count = min(job["batchSize"], job["records"] - first)
        result = yield context.call_activity(
            "export_batch", {"dataset": job["dataset"], "batch": batch, "first": first, "count": count}
        )
        exported += result["rows"]
        context.set_custom_status(progress(job, batch + 1, exported, "exporting"))
    file = yield context.call_activity(
        "finalize_export", {"dataset": job["dataset"], "jobId": context.instance_id, "rows": exported}
    )
    context.set_custom_status(progress(job, batch_count(job), exported, "completed"))
    return {"dataset": job["dataset"], "exportedRecords": exported, "batches": batch_count(job), **file}
