"""The `{Hub}History` table: one partition per instance holding its events, its outbox and its sentinel.

A checkpoint is one entity-group transaction per partition (split past 99 rows or ~3 MB, like the
provider): the new event rows as UpsertReplace, the outbox rows, and the sentinel, inserted for a new
instance or merged with If-Match on the ETag the episode started from. 412/409/404 on the sentinel
means another writer moved the instance on: `StaleCheckpointError` (docs/azure-storage-taskhub.md §3.3).
Only the last transaction advances `FuncemuEventCount`, so readers never see a partial checkpoint.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from funcemu.durable.store import azure_rows as rows
from funcemu.durable.store.azure_batch import submit
from funcemu.durable.store.azure_blobs import LargeMessages
from funcemu.durable.store.azure_names import SENTINEL_ROW, odata_string
from funcemu.durable.store.base import StaleCheckpointError

MAX_ROWS = 99                       # plus the sentinel: a transaction holds at most 100 entities
MAX_BATCH_BYTES = 3 * 1024 * 1024   # of the 4 MiB a transaction may carry (the provider's estimate)
_STALE_CODES = {"UpdateConditionNotSatisfied", "EntityAlreadyExists", "ResourceNotFound"}
Entity = dict[str, Any]


@dataclass
class Loaded:
    events: list[dict[str, Any]] = field(default_factory=list)
    sentinel: TableEntity | None = None
    outbox: list[TableEntity] = field(default_factory=list)


@dataclass
class Committed:
    sentinel_etag: str
    event_count: int
    outbox_rows: list[str]
    swept: bool = False     # the rows to sweep were deleted in the same transaction


class _RowsGone(Exception):
    """A row the transaction was to delete is gone already (nothing was written)."""


class HistoryTable:
    def __init__(self, table: TableClient, blobs: LargeMessages) -> None:
        self.table, self._blobs = table, blobs

    async def load(self, partition_key: str) -> Loaded:
        """The current execution's events (up to the last complete checkpoint), sentinel and outbox."""
        try:
            found = [entity async for entity in self.table.query_entities(
                f"PartitionKey eq {odata_string(partition_key)}")]
        except ResourceNotFoundError:
            return Loaded()
        keyed = {entity["RowKey"]: entity for entity in found}
        sentinel = keyed.pop(SENTINEL_ROW, None)
        outbox = [keyed.pop(key) for key in sorted(keyed) if key.startswith(rows.OUTBOX_PREFIX)]
        current = _current_rows([keyed[key] for key in sorted(keyed)], sentinel)
        resolved = await asyncio.gather(*(self._resolve(dict(entity)) for entity in current))
        return Loaded([rows.entity_event(entity) for entity in resolved], sentinel, outbox)

    async def sentinel(self, partition_key: str) -> TableEntity | None:
        try:
            found: TableEntity = await self.table.get_entity(partition_key, SENTINEL_ROW)
        except ResourceNotFoundError:
            return None
        return found

    async def reset(self, partition_key: str, execution_id: str) -> str:
        """Start a new execution with an empty history; any episode of the old one becomes stale."""
        columns = rows.final_sentinel_columns(execution_id, 0, "")
        written = await self.table.upsert_entity(rows.sentinel_entity(partition_key, **columns),
                                                 mode=UpdateMode.REPLACE)
        return str(written["etag"])

    async def commit(self, instance_id: str, partition_key: str, etag: rows.HubEtag, execution_id: str,
                     events: list[dict[str, Any]], start: int, outbox: list[list[Any]],
                     checkpoint_id: str, sweep: list[str] | None = None) -> Committed:
        """Append `events` at index `start` and write the outbox, guarded by the sentinel's ETag. The
        sentinel's `FuncemuOutboxId` becomes `checkpoint_id` (the outbox rows carry it too). The rows
        named in `sweep` (outbox rows already sent) are deleted in the same transaction when it is the
        only one; `swept` says whether they were."""
        entities = [rows.event_entity(event, partition_key, rows.row_key(start + index), execution_id)
                    for index, event in enumerate(events)]
        await asyncio.gather(*(self._offload(entity) for entity in entities))
        outbox_rows = rows.outbox_entities(partition_key, checkpoint_id, outbox) if outbox else []
        chunks = _chunks(entities + outbox_rows)
        if sweep and (len(chunks) > 1 or len(chunks[0]) + len(sweep) > MAX_ROWS):
            sweep = None
        try:
            return await self._commit_chunks(instance_id, partition_key, etag, execution_id, start + len(events),
                                             chunks, checkpoint_id, outbox_rows, sweep or [])
        except _RowsGone:
            return await self._commit_chunks(instance_id, partition_key, etag, execution_id, start + len(events),
                                             chunks, checkpoint_id, outbox_rows, [])

    async def _commit_chunks(self, instance_id: str, partition_key: str, etag: rows.HubEtag, execution_id: str,
                             event_count: int, chunks: list[list[Entity]], checkpoint_id: str,
                             outbox_rows: list[Entity], sweep: list[str]) -> Committed:
        current = etag.sentinel
        for number, chunk in enumerate(chunks):
            final = number == len(chunks) - 1
            columns = (rows.final_sentinel_columns(execution_id, event_count, checkpoint_id)
                       if final else _partial_columns(execution_id, current))
            current = await self._transact(instance_id, partition_key, current, columns, chunk,
                                           sweep if number == 0 else [])
        return Committed(current or "", event_count, [row["RowKey"] for row in outbox_rows], bool(sweep))

    async def committed(self, partition_key: str, checkpoint_id: str, outbox: list[list[Any]]) -> Committed | None:
        """What `commit` returned for `checkpoint_id` if that commit was applied (its answer was lost)."""
        sentinel = await self.sentinel(partition_key)
        if sentinel is None or sentinel.get("FuncemuOutboxId") != checkpoint_id \
                or sentinel.get("IsCheckpointComplete") is not True:
            return None
        outbox_rows = rows.outbox_entities(partition_key, checkpoint_id, outbox) if outbox else []
        return Committed(str(sentinel.metadata["etag"]), rows.sentinel_count(sentinel),
                         [row["RowKey"] for row in outbox_rows])

    async def delete_rows(self, partition_key: str, keys: list[str]) -> None:
        """Delete rows in transactions of 100 (falling back to one by one when some are gone)."""
        batches = [keys[start:start + 100] for start in range(0, len(keys), 100)]
        await asyncio.gather(*(self._delete_batch(partition_key, batch) for batch in batches))

    async def purge(self, partition_key: str) -> None:
        try:
            keys = [entity["RowKey"] async for entity in self.table.query_entities(
                f"PartitionKey eq {odata_string(partition_key)}", select=["RowKey"])]
        except ResourceNotFoundError:
            return
        await self.delete_rows(partition_key, keys)
        await self._blobs.delete_prefixes([f"{partition_key}/history-"])

    async def _transact(self, instance_id: str, partition_key: str, etag: str | None,
                        columns: dict[str, Any], chunk: list[Entity], sweep: list[str]) -> str:
        sentinel = rows.sentinel_entity(partition_key, **columns)
        first: tuple[Any, ...] = (("create", sentinel) if etag is None else
                                  ("update", sentinel, {"mode": UpdateMode.MERGE, "etag": etag,
                                                        "match_condition": MatchConditions.IfNotModified}))
        operations = [first, *(("upsert", entity, {"mode": UpdateMode.REPLACE}) for entity in chunk),
                      *(("delete", {"PartitionKey": partition_key, "RowKey": key}) for key in sweep)]
        try:
            result = await submit(self.table, operations)
        except TableTransactionError as error:
            if sweep and _code(error) == "ResourceNotFound":
                raise _RowsGone() from None     # or the sentinel is gone: the retry without them says
            if error.index == 0 and _code(error) in _STALE_CODES:
                raise StaleCheckpointError(instance_id) from None
            raise
        return str(result[0]["etag"])

    async def _delete_batch(self, partition_key: str, keys: list[str]) -> None:
        entities = [{"PartitionKey": partition_key, "RowKey": key} for key in keys]
        try:
            await submit(self.table, [("delete", entity) for entity in entities])
        except (TableTransactionError, ResourceNotFoundError):
            await asyncio.gather(*(self._delete_one(entity) for entity in entities))

    async def _delete_one(self, entity: Entity) -> None:
        try:
            await self.table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        except ResourceNotFoundError:
            pass

    async def _offload(self, entity: Entity) -> None:
        """Move columns over 60 KiB (UTF-16) to blobs named as the provider names them (§2.4)."""
        for column in rows.LARGE_COLUMNS:
            value = entity.get(column)
            if isinstance(value, str) and rows.utf16_size(value) > rows.LARGE_COLUMN_BYTES:
                name = (f"{entity['PartitionKey']}/history-{entity['RowKey']}-{entity['EventType']}-"
                        f"{secrets.randbits(32):08X}-{column}.json.gz")
                await self._blobs.upload(name, value)
                entity[column], entity[f"{column}BlobName"] = "", name

    async def _resolve(self, entity: Entity) -> Entity:
        for key in [key for key in entity if key.endswith("BlobName")]:
            name = entity.pop(key)
            if name:
                entity[key[:-len("BlobName")]] = await self._blobs.download(name)
        return entity


def _current_rows(ordered: list[Entity], sentinel: Entity | None) -> list[Entity]:
    """Rows of the sentinel's execution from RowKey 0, stopping at another execution's leftovers."""
    if not ordered:
        return []
    execution = (sentinel or ordered[0]).get("ExecutionId")
    limit = rows.sentinel_count(sentinel) if sentinel and "FuncemuEventCount" in sentinel else len(ordered)
    current = []
    for entity in ordered[:limit]:
        if entity.get("ExecutionId") != execution:
            break
        current.append(entity)
    return current


def _partial_columns(execution_id: str, etag: str | None) -> dict[str, Any]:
    """The sentinel of a transaction that is not a checkpoint's last: marks it incomplete only."""
    if etag is None:
        return {"ExecutionId": execution_id, "IsCheckpointComplete": False, "FuncemuEventCount": 0,
                "FuncemuOutboxId": ""}
    return {"IsCheckpointComplete": False}


def _chunks(entities: list[Entity]) -> list[list[Entity]]:
    chunks: list[list[Entity]] = [[]]
    size = 0
    for entity in entities:
        entity_size = rows.estimated_size(entity)
        if chunks[-1] and (len(chunks[-1]) >= MAX_ROWS or size + entity_size > MAX_BATCH_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(entity)
        size += entity_size
    return chunks


def _code(error: HttpResponseError) -> str:
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code))
