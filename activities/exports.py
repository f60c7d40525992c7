"""Activities of the export job (async HTTP API)."""

import hashlib

import azure.durable_functions as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="batch")
def export_batch(batch: dict) -> dict:
    """Write rows `first` .. `first + count - 1` of the dataset (here: compute their checksum)."""
    rows = (f"{batch['dataset']},{index}" for index in range(batch["first"], batch["first"] + batch["count"]))
    digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
    return {"batch": batch["batch"], "rows": batch["count"], "checksum": digest}


@bp.activity_trigger(input_name="export")
def finalize_export(export: dict) -> dict:
    """Close the export file and return where it is."""
    return {"location": f"exports/{export['dataset']}/{export['jobId']}.csv"}
