"""`azure_batch.submit`, the store's own entity-group transactions, against Azurite: the rows, ETags and
errors are those of the SDK's `submit_transaction`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import EdmType, EntityProperty, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from funcemu.durable.store.azure_batch import submit
from funcemu.testing.azurite import Azurite

pytestmark = pytest.mark.azurite
Run = Callable[[Awaitable[Any]], Any]
KEY = "order^01 'quoted' ü%20"   # as keys may be: quotes, non-ASCII, percent signs


async def with_table(azurite: Azurite, check: Callable[[TableClient], Awaitable[None]]) -> None:
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        name = "batch" + uuid.uuid4().hex[:12]
        table = await service.create_table(name)
        try:
            await check(table)
        finally:
            await service.delete_table(name)


async def rows(table: TableClient) -> dict[str, dict[str, Any]]:
    listed: AsyncIterator[Any] = table.list_entities()
    return {entity["RowKey"]: dict(entity) async for entity in listed}


def test_every_operation_kind_and_the_etags(azurite: Azurite, run: Run) -> None:
    async def check(table: TableClient) -> None:
        await table.create_entity({"PartitionKey": KEY, "RowKey": "sentinel", "Count": 1})
        await table.create_entity({"PartitionKey": KEY, "RowKey": "old", "Text": "bye"})
        sentinel = await table.get_entity(KEY, "sentinel")
        when = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
        result = await submit(table, [
            ("update", {"PartitionKey": KEY, "RowKey": "sentinel", "Done": True, "At": when},
             {"mode": UpdateMode.MERGE, "etag": sentinel.metadata["etag"],
              "match_condition": MatchConditions.IfNotModified}),
            ("upsert", {"PartitionKey": KEY, "RowKey": "0001", "Text": "é\"\r\n--x HTTP/1.1 200",
                        "Big": EntityProperty(2**40, EdmType.INT64), "Ratio": 1.5, "Small": 7},
             {"mode": UpdateMode.REPLACE}),
            ("delete", {"PartitionKey": KEY, "RowKey": "old"}),
            ("create", {"PartitionKey": KEY, "RowKey": "new", "Flag": False})])
        found = await rows(table)
        assert sorted(found) == ["0001", "new", "sentinel"]
        assert (found["sentinel"]["Count"], found["sentinel"]["Done"], found["sentinel"]["At"]) == (1, True, when)
        assert found["0001"]["Text"] == "é\"\r\n--x HTTP/1.1 200" and found["0001"]["Big"].value == 2**40
        assert (found["0001"]["Ratio"], found["0001"]["Small"], found["new"]["Flag"]) == (1.5, 7, False)
        assert result[0]["etag"] == (await table.get_entity(KEY, "sentinel")).metadata["etag"]
        assert result[1]["etag"] == (await table.get_entity(KEY, "0001")).metadata["etag"]
        assert result[2] == {}
    run(with_table(azurite, check))


def test_a_rejected_operation_names_its_index_and_nothing_is_written(azurite: Azurite, run: Run) -> None:
    async def check(table: TableClient) -> None:
        await table.create_entity({"PartitionKey": "p", "RowKey": "sentinel"})
        sentinel = await table.get_entity("p", "sentinel")
        await table.update_entity({"PartitionKey": "p", "RowKey": "sentinel", "Moved": 1})   # the ETag moves
        row = ("upsert", {"PartitionKey": "p", "RowKey": "0001"}, {"mode": UpdateMode.REPLACE})
        with pytest.raises(TableTransactionError) as stale:
            await submit(table, [("update", {"PartitionKey": "p", "RowKey": "sentinel"},
                                  {"mode": UpdateMode.MERGE, "etag": sentinel.metadata["etag"],
                                   "match_condition": MatchConditions.IfNotModified}), row])
        assert (stale.value.index, stale.value.status_code) == (0, 412)
        assert stale.value.error_code == "UpdateConditionNotSatisfied"  # type: ignore[attr-defined]
        with pytest.raises(TableTransactionError) as exists:
            await submit(table, [("create", {"PartitionKey": "p", "RowKey": "sentinel"}), row])
        assert (exists.value.index, exists.value.error_code) == (0, "EntityAlreadyExists")  # type: ignore[attr-defined]
        with pytest.raises(TableTransactionError) as missing:
            await submit(table, [row, ("delete", {"PartitionKey": "p", "RowKey": "missing"})])
        assert (missing.value.index, missing.value.error_code) == (1, "ResourceNotFound")  # type: ignore[attr-defined]
        assert sorted(await rows(table)) == ["sentinel"]
    run(with_table(azurite, check))


def test_a_missing_table_fails_as_in_the_sdk(azurite: Azurite, run: Run) -> None:
    async def check() -> None:
        async with TableClient.from_connection_string(azurite.connection_string, "nosuchtable") as table:
            with pytest.raises(TableTransactionError) as missing:
                await submit(table, [("upsert", {"PartitionKey": "p", "RowKey": "r"}, {"mode": UpdateMode.REPLACE})])
            assert (missing.value.status_code, missing.value.error_code) == (404, "TableNotFound")  # type: ignore[attr-defined]
    run(check())


def test_a_request_the_service_refuses_whole_is_the_sdks_error(azurite: Azurite, run: Run) -> None:
    async def check(table: TableClient) -> None:
        too_many = [("upsert", {"PartitionKey": "p", "RowKey": f"{index:04d}"}, {"mode": UpdateMode.REPLACE})
                    for index in range(101)]
        with pytest.raises(HttpResponseError) as refused:
            await submit(table, too_many)
        assert refused.value.status_code == 400
    run(with_table(azurite, check))
