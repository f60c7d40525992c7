"""The `{Hub}Instances` table: one status row per instance (RowKey ""), docs/azure-storage-taskhub.md §4.

The row is replaced whole at each write. Input, output or custom status over 60 KiB (UTF-16) go to a
`{h}-largemessages` blob and the column holds the blob's absolute URL, as the provider writes it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from funcemu.durable.store import azure_rows as rows
from funcemu.durable.store.azure_blobs import LargeMessages
from funcemu.durable.store.azure_names import (
    escape_key,
    odata_datetime,
    odata_string,
    prefix_filter,
    unescape_key,
)
from funcemu.durable.store.base import InstanceQuery, InstanceState
from funcemu.durable.store.memory import decode_continuation, page_of

_BLOB_COLUMNS = ("Input", "Output", "CustomStatus")
Entity = dict[str, Any]


class InstancesTable:
    def __init__(self, table: TableClient, blobs: LargeMessages, hub: str) -> None:
        self.table, self._blobs, self._hub = table, blobs, hub

    async def row(self, instance_id: str) -> Entity | None:
        try:
            found: Entity = await self.table.get_entity(escape_key(instance_id), "")
        except ResourceNotFoundError:
            return None
        return found

    async def read(self, instance_id: str) -> InstanceState | None:
        found = await self.row(instance_id)
        return await self.state(found, instance_id) if found is not None else None

    async def state(self, entity: Entity, instance_id: str) -> InstanceState:
        resolved = dict(entity)
        for column in _BLOB_COLUMNS:
            name = self._blobs.name_in(resolved.get(column))
            if name:
                resolved[column] = await self._blobs.value(name)
        return rows.entity_instance(resolved, instance_id)

    async def write(self, state: InstanceState, etag: rows.HubEtag, *, only_new: bool = False) -> bool:
        """Replace the row; with `only_new`, insert it only if there is none. Whether it was written."""
        entity = rows.instance_entity(state, self._hub, etag)
        for column in _BLOB_COLUMNS:
            value = entity.get(column)
            if isinstance(value, str) and rows.utf16_size(value) > rows.LARGE_COLUMN_BYTES:
                name = f"{entity['PartitionKey']}/instance-{state.execution_id}-{column}.json.gz"
                await self._blobs.upload(name, value)
                entity[column] = self._blobs.url_for(name)
        if not only_new:
            await self.table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            return True
        try:
            await self.table.create_entity(entity)
        except ResourceExistsError:
            return False
        return True

    async def delete(self, instance_id: str) -> bool:
        """Delete the row; whether it existed."""
        if await self.row(instance_id) is None:
            return False
        try:
            await self.table.delete_entity(escape_key(instance_id), "")
        except ResourceNotFoundError:
            return False
        await self._blobs.delete_prefixes([f"{escape_key(instance_id)}/instance-"])
        return True

    async def query(self, query: InstanceQuery) -> tuple[list[InstanceState], str | None]:
        """Filter in the service; rows come in PartitionKey (escaped instance id) order, paged by that key."""
        after = decode_continuation(query.continuation)
        try:
            found = [entity async for entity in self.table.query_entities(_filter(query, after))]
        except ResourceNotFoundError:
            return [], None
        states = await asyncio.gather(*(self.state(entity, _instance_id(entity)) for entity in found))
        return page_of(list(states), query, key=lambda state: escape_key(state.instance_id))


def _instance_id(entity: Entity) -> str:
    return unescape_key(str(entity["PartitionKey"]))


def _filter(query: InstanceQuery, after: str | None) -> str:
    """The provider's OData conditions (§4.4), each in parentheses, joined with `and`; `after` is the
    PartitionKey the previous page ended at."""
    parts = ["RowKey eq ''"]
    if after is not None:
        parts.append(f"PartitionKey gt {odata_string(after)}")
    if query.created_from is not None:
        parts.append(f"CreatedTime ge {odata_datetime(query.created_from)}")
    if query.created_to is not None:
        parts.append(f"CreatedTime le {odata_datetime(query.created_to)}")
    if query.statuses:
        parts.append(" or ".join(f"RuntimeStatus eq {odata_string(status.value)}" for status in query.statuses))
    if query.instance_id_prefix:
        parts.append(prefix_filter("PartitionKey", escape_key(query.instance_id_prefix)))
    return " and ".join(f"({part})" for part in parts)
