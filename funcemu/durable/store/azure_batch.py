"""Entity-group transactions (the Table service's `$batch`), written and read without the SDK's multipart code.

`TableClient.submit_transaction` turns each operation into an `HttpRequest` and runs the parts through
azure-core's multipart machinery, parsing the answer with `email.parser`: about 4 ms of CPU per
transaction, most of the client's cost of a checkpoint. `submit` writes the same request (the SDK's own
entity serialization, the sub-request lines the SDK writes) with string joins and reads the answer with a
few splits. The request still goes through the table client's pipeline (authentication, retries,
transport), and failures raise what `submit_transaction` raises: `TableTransactionError` with the index
of the failed operation for a rejected operation, the SDK's decoded error for a rejected request.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.rest import HttpRequest
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

try:    # the SDK's own serialization and error decoding (private names; else its submit_transaction)
    from azure.data.tables._error import _decode_error
    from azure.data.tables._serialize import _add_entity_properties
    _OWN = True
except ImportError:  # pragma: no cover - an SDK that moved them
    _OWN = False

Operation = tuple[Any, ...]   # ("create" | "update" | "upsert" | "delete", entity[, options])


async def submit(table: TableClient, operations: list[Operation]) -> list[dict[str, str]]:
    """Run `operations` (the tuples `submit_transaction` takes; update/upsert with `mode`, update with
    `etag` and `match_condition`) as one transaction; per operation, its new `etag` when it has one."""
    if not _OWN or not hasattr(table._client, "send_request"):  # noqa: SLF001
        return [dict(result) for result in await table.submit_transaction(operations)]  # pragma: no cover
    base = f"{table.scheme}://{table._primary_hostname}"  # noqa: SLF001 - as the SDK addresses its parts
    version = table.api_version
    changeset = f"changeset_{uuid.uuid4()}"
    lines: list[str] = []
    for index, operation in enumerate(operations):
        method, path, extra, body = _part(table.table_name, operation)
        lines += [f"--{changeset}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                  f"Content-ID: {index}", "", f"{method} {base}/{path} HTTP/1.1"]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"x-ms-version: {version}", "DataServiceVersion: 3.0",
                  "Accept: application/json;odata=minimalmetadata", *extra, "", body or ""]
    batch = f"batch_{uuid.uuid4()}"
    text = "\r\n".join([f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", "", *lines,
                        f"--{changeset}--", "", f"--{batch}--", ""])
    request = HttpRequest("POST", f"{base}/$batch", content=text.encode("utf-8"), headers={
        "x-ms-version": version, "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
        "Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json"})
    # streamed, as the SDK sends it: the pipeline's content decoding would choke on multipart
    response = await table._client.send_request(request, stream=True)  # noqa: SLF001 - the table's pipeline
    await response.read()
    if response.status_code != 202:
        raise _decode_error(response)
    results: list[dict[str, str]] = []
    for status, answer, body in _responses(response.text()):
        if not 200 <= status < 300:
            raise _failure(status, body)
        results.append({"etag": answer["etag"]} if "etag" in answer else {})
    return results


def _part(table: str, operation: Operation) -> tuple[str, str, list[str], str | None]:
    """Method, path, extra headers and JSON body of one operation, as the SDK writes them."""
    kind, entity = operation[0], operation[1]
    options: dict[str, Any] = operation[2] if len(operation) > 2 else {}
    keys = f"{table}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
    if kind == "delete":
        return "DELETE", keys, ["If-Match: *"], None
    body = json.dumps(_add_entity_properties(entity))
    if kind == "create":
        return "POST", table, ["Prefer: return-no-content"], body
    mode = options.get("mode", UpdateMode.MERGE)
    if kind == "upsert":
        return ("PUT" if mode == UpdateMode.REPLACE else "MERGE"), keys, [], body
    if kind == "update":
        etag = options.get("etag")
        if options.get("match_condition", MatchConditions.Unconditionally) == MatchConditions.IfNotModified:
            if not etag:
                raise ValueError("IfNotModified must be specified with etag.")
            match = etag
        else:
            match = "*"
        return ("PUT" if mode == UpdateMode.REPLACE else "PATCH"), keys, [f"If-Match: {match}"], body
    raise ValueError(f"unsupported transaction operation {kind!r}")


def _key(value: str) -> str:
    return quote(value.replace("'", "''"), safe="")


def _responses(text: str) -> list[tuple[int, dict[str, str], str]]:
    """(status, headers with lower-case names, body) of each operation's answer in a changeset response."""
    marker = "boundary=changesetresponse_"
    start = text.find(marker)
    if start < 0:
        raise ValueError(f"unexpected transaction response: {text[:200]!r}")
    boundary = "--" + text[start + len("boundary="):].split(None, 1)[0].strip().strip('"')
    found: list[tuple[int, dict[str, str], str]] = []
    for part in text.split(boundary)[1:]:
        if part.startswith("--"):
            break
        http = part.split("HTTP/1.1 ", 1)
        if len(http) < 2:
            continue
        normalized = http[1].replace("\r\n", "\n")
        head, _, body = normalized.partition("\n\n")
        status_line, *header_lines = head.split("\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        found.append((int(status_line.split()[0]), headers, body.strip()))
    return found


def _failure(status: int, body: str) -> TableTransactionError:
    code, message = None, body
    try:
        detail = json.loads(body)["odata.error"]
        code, message = detail.get("code"), detail.get("message", {}).get("value", body)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    error = TableTransactionError(message=message)     # its index: the number the message starts with
    error.status_code = status
    error.error_code = code  # type: ignore[attr-defined]
    return error
