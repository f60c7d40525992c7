"""Output bindings queue, blob and table: what the host does with the value the worker sends back.

Registered in `host.bindings`; `Host.call` runs them after a successful invocation with the trigger's
binding data, so `{queueTrigger}`, `{name}`, `{rand-guid}`, `{DateTime}` and route parameters work in
queue names, blob paths, table names and keys. Queues, containers and tables are created on first
write, as the host creates them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import UpdateMode
from azure.functions import meta

from funcemu.app import FunctionSpec
from funcemu.errors import FuncemuError
from funcemu.triggers.convert import datum_bytes, encode_output
from funcemu.triggers.expressions import render, resolve_settings
from funcemu.triggers.polling import encode_body
from funcemu.triggers.queue import queue_name
from funcemu.triggers.storage import Accounts, StorageAccount, Watchers

TABLE_NAME_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")


class OutputBindingError(FuncemuError):
    pass


def split_blob_path(function: str, binding: str, path: str) -> tuple[str, str]:
    container, _, name = path.strip("/").partition("/")
    if not container or not name:
        raise OutputBindingError(f"Function '{function}' (binding '{binding}'): blob path '{path}' must be "
                                 "'<container>/<blob name>'.")
    return container, name


def queue_messages(datum: meta.Datum) -> list[bytes]:
    """One message per element of a JSON array (a list set on the output), else one message."""
    if datum.type == "json":
        value = json.loads(datum.value)
        if isinstance(value, list):
            return [item.encode("utf-8") if isinstance(item, str) else json.dumps(item).encode("utf-8")
                    for item in value]
    return [datum_bytes(datum)]


def table_entities(datum: meta.Datum) -> list[dict[str, Any]]:
    text = datum.value.decode("utf-8") if datum.type == "bytes" else datum.value
    value = json.loads(text) if isinstance(text, str) else text
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in items):
        raise OutputBindingError("A table output takes a JSON object or an array of JSON objects "
                                 f"(a dict, a list of dicts, or their JSON text); got {text!r:.80}")
    return items


def table_row(entity: Mapping[str, Any], defaults: Mapping[str, str | None]) -> dict[str, Any]:
    """An entity with PartitionKey/RowKey (from the value, else the binding); nested values as JSON."""
    row: dict[str, Any] = {}
    for key, value in entity.items():
        canonical = next((k for k in ("PartitionKey", "RowKey") if k.lower() == key.lower()), key)
        if value is None or canonical in ("Timestamp", "ETag", "odata.etag"):
            continue
        row[canonical] = json.dumps(value) if isinstance(value, (dict, list)) else value
    for key in ("PartitionKey", "RowKey"):
        if key not in row and defaults.get(key):
            row[key] = defaults[key]
        if key not in row:
            raise OutputBindingError(f"The table entity has no {key} and the binding sets none: {dict(entity)!r:.120}")
        row[key] = str(row[key])
    return row


class OutputWriters:
    def __init__(self, accounts: Accounts, watchers: Watchers, message_encoding: str,
                 environ: Mapping[str, str] | None = None) -> None:
        self.accounts, self.watchers, self.encoding = accounts, watchers, message_encoding
        self.environ = os.environ if environ is None else environ
        self._tables: set[tuple[str, str]] = set()

    def _resolve(self, spec: FunctionSpec, binding: dict[str, Any]) -> tuple[dict[str, Any], StorageAccount]:
        return resolve_settings(spec.name, binding, self.environ), self.accounts.for_binding(spec.name, binding)

    async def queue(self, spec: FunctionSpec, binding: dict[str, Any], value: Any, metadata: dict[str, Any]) -> None:
        resolved, account = self._resolve(spec, binding)
        name = queue_name(spec.name, binding, render(str(resolved.get("queueName", "")), metadata,
                                                     function=spec.name))
        messages = queue_messages(encode_output(spec, binding, value))
        client = await account.ensure_queue(name)
        for body in messages:
            await client.send_message(encode_body(body, self.encoding))
        self.watchers.notify(account.key("queue", name))

    async def blob(self, spec: FunctionSpec, binding: dict[str, Any], value: Any, metadata: dict[str, Any]) -> None:
        resolved, account = self._resolve(spec, binding)
        path = render(str(resolved.get("path", "")), metadata, function=spec.name)
        container_name, blob_name = split_blob_path(spec.name, binding["name"], path)
        data = datum_bytes(encode_output(spec, binding, value))
        container = await account.ensure_container(container_name)
        await container.upload_blob(blob_name, data, overwrite=True)
        self.watchers.notify(account.key("blob", container_name))

    async def table(self, spec: FunctionSpec, binding: dict[str, Any], value: Any, metadata: dict[str, Any]) -> None:
        resolved, account = self._resolve(spec, binding)
        name = render(str(resolved.get("tableName", "")), metadata, function=spec.name)
        if not TABLE_NAME_RULE.match(name):
            raise OutputBindingError(f"Function '{spec.name}' (binding '{binding['name']}'): table name "
                                     f"'{name}' must be 3-63 letters and digits, starting with a letter.")
        defaults = {key: render(str(resolved[prop]), metadata, function=spec.name) if resolved.get(prop) else None
                    for key, prop in (("PartitionKey", "partitionKey"), ("RowKey", "rowKey"))}
        rows = [table_row(e, defaults) for e in table_entities(encode_output(spec, binding, value))]
        client = await self._table(account, name)
        for row in rows:
            await client.upsert_entity(row, mode=UpdateMode.REPLACE)

    async def _table(self, account: StorageAccount, name: str) -> Any:
        if (account.setting, name) not in self._tables:
            try:
                await account.tables.create_table(name)
            except ResourceExistsError:
                pass
            self._tables.add((account.setting, name))
        return account.tables.get_table_client(name)
