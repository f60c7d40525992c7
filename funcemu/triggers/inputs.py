"""Input bindings blob and table: what the host reads and hands the worker before an invocation.

Blob input: the blob's content (None when it does not exist) as `func.InputStream` (no name, uri or
length: the worker passes no trigger metadata for inputs), or raw `bytes`/`str` for those annotations.
Table input: the entity (`partitionKey` + `rowKey`) or a list of entities (`partitionKey`, `filter`,
`take`) as JSON text, which is what the worker's generic converter passes to the function.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.functions import meta

from funcemu.app import FunctionSpec
from funcemu.jsontext import compact
from funcemu.triggers.convert import annotation, decode_input
from funcemu.triggers.expressions import render, resolve_settings
from funcemu.triggers.outputs import split_blob_path
from funcemu.triggers.storage import Accounts


def blob_datum(content: bytes | None, binding: Mapping[str, Any], hint: Any) -> meta.Datum | None:
    """Bytes, unless dataType STRING or a `str` parameter asks for text (funcemu's reading of an
    UNCONFIRMED point in §3.10: a `str` parameter gets the decoded text rather than bytes)."""
    if content is None:
        return None
    if str(binding.get("dataType") or "").lower() == "string" or hint is str:
        return meta.Datum(content.decode("utf-8", errors="replace"), "string")
    return meta.Datum(content, "bytes")


def entity_json(entity: Mapping[str, Any]) -> dict[str, Any]:
    """A table entity as the host's JSON: properties plus PartitionKey, RowKey and Timestamp."""
    out: dict[str, Any] = {}
    for key, value in entity.items():
        out[key] = _json_value(getattr(value, "value", value))
    stamp = getattr(entity, "metadata", {}).get("timestamp")
    if stamp is not None:
        out["Timestamp"] = stamp.isoformat()
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def table_filter(partition_key: str | None, extra: str | None) -> str | None:
    parts = []
    if partition_key:
        parts.append("PartitionKey eq '" + partition_key.replace("'", "''") + "'")
    if extra:
        parts.append(f"({extra})" if parts else extra)
    return " and ".join(parts) or None


class InputProviders:
    def __init__(self, accounts: Accounts, environ: Mapping[str, str] | None = None) -> None:
        self.accounts = accounts
        self.environ = os.environ if environ is None else environ

    async def blob(self, spec: FunctionSpec, binding: dict[str, Any], metadata: dict[str, Any]) -> Any:
        resolved = resolve_settings(spec.name, binding, self.environ)
        account = self.accounts.for_binding(spec.name, binding)
        path = render(str(resolved.get("path", "")), metadata, function=spec.name)
        container, name = split_blob_path(spec.name, binding["name"], path)
        try:
            stream = await account.container(container).get_blob_client(name).download_blob()
            content: bytes | None = await stream.readall()
        except ResourceNotFoundError:
            content = None
        datum = blob_datum(content, binding, annotation(spec, binding["name"]))
        return decode_input(spec, binding, datum, {})

    async def table(self, spec: FunctionSpec, binding: dict[str, Any], metadata: dict[str, Any]) -> Any:
        resolved = resolve_settings(spec.name, binding, self.environ)
        account = self.accounts.for_binding(spec.name, binding)

        def prop(key: str) -> str | None:
            raw = resolved.get(key)
            return render(str(raw), metadata, function=spec.name) if raw not in (None, "") else None

        client = account.tables.get_table_client(prop("tableName") or "")
        partition_key, row_key = prop("partitionKey"), prop("rowKey")
        value: Any
        if partition_key and row_key:
            try:
                value = entity_json(await client.get_entity(partition_key, row_key))
            except ResourceNotFoundError:
                value = None
        else:
            value = await self._query(client, table_filter(partition_key, prop("filter")), prop("take"))
        return decode_input(spec, binding, table_datum(value), {})

    async def _query(self, client: Any, query: str | None, take: str | None) -> list[dict[str, Any]]:
        limit = int(take) if take else None
        pages = client.query_entities(query) if query else client.list_entities()
        rows: list[dict[str, Any]] = []
        try:
            async for entity in pages:
                rows.append(entity_json(entity))
                if limit is not None and len(rows) >= limit:
                    break
        except ResourceNotFoundError:
            return []
        return rows


def table_datum(value: dict[str, Any] | list[dict[str, Any]] | None) -> meta.Datum | None:
    """The JSON the host sends (RpcMessageConversionExtensions.ToRpc): one entity is a JObject, written
    with JObject.ToString() (Newtonsoft indented); a query's JArray goes through
    JsonConvert.SerializeObject (compact)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return meta.Datum(json.dumps(value, indent=2, ensure_ascii=False), "json")
    return meta.Datum(compact(value), "json")
