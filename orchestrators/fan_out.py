"""Fan-out/fan-in: count the words of many documents in parallel, then merge the counts.

One `count_words` activity runs per document, all at once (`task_all`); `merge_word_counts` turns their
results into totals and the most frequent words.

    POST /api/word-counts  {"documents": [{"name": "a.txt", "text": "..."}, ...], "top": 5}
"""

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from orchestrators import inputs

bp = df.Blueprint()

MAX_DOCUMENTS = 500
MAX_TEXT = 100_000


@bp.route(route="word-counts", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_word_count(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        job = read_job(inputs.json_object(req))
    except inputs.InputError as error:
        return inputs.bad_request(error)
    instance_id = await client.start_new("word_count_workflow", client_input=job)
    return client.create_check_status_response(req, instance_id)


def read_job(body: dict[str, Any]) -> dict[str, Any]:
    documents = inputs.objects(body, "documents", max_items=MAX_DOCUMENTS)
    names: set[str] = set()
    checked = []
    for index, document in enumerate(documents):
        where = f"documents[{index}]."
        name = inputs.text(document, "name", where=where)
        if name in names:
            raise inputs.InputError(f"{where}name {name!r} is used by an earlier document")
        names.add(name)
        checked.append({"name": name, "text": read_text(document, where)})
    return {"documents": checked, "top": inputs.integer(body, "top", low=1, high=100, default=10)}


def read_text(document: dict[str, Any], where: str) -> str:
    value = document.get("text")
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise inputs.InputError(f"{where}text must be a string of at most {MAX_TEXT} characters")
    return value


@bp.orchestration_trigger(context_name="context")
def word_count_workflow(context: df.DurableOrchestrationContext):
    job = context.get_input()
    tasks = [context.call_activity("count_words", document) for document in job["documents"]]
    counts = yield context.task_all(tasks)
    summary = yield context.call_activity("merge_word_counts", {"counts": counts, "top": job["top"]})
    return summary
