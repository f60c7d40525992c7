"""Entity rows in `{Hub}Instances` as the provider's entity scheduler writes them (docs/azure-storage-taskhub.md
§4.3; DTCore `Entities/StateFormat/SchedulerState.cs`, `EntityStatus.cs`; DTAS `EntityTrackingStoreQueries`):
`Input` is the scheduler state (the entity state as a JSON string of its JSON text), `CustomStatus` the entity
status, `Name` the instance id, `ExecutionId` a GUID. funcemu reads them back as before, and also reads the
rows it wrote before (the state in `Output`)."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import azure.durable_functions as df
import pytest
from azure.data.tables import TableServiceClient, UpdateMode

from funcemu.app import _spec
from funcemu.durable.clock import VirtualClock
from funcemu.durable.engine import Engine
from funcemu.durable.registry import DurableRegistry
from funcemu.durable.store import azure_rows as rows
from funcemu.durable.store.azure import AzureStore
from funcemu.durable.store.base import InstanceQuery, InstanceState, RuntimeStatus
from funcemu.testing.azurite import Azurite

pytestmark = pytest.mark.azurite
Run = Callable[[Awaitable[Any]], Any]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
app = df.DFApp()


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    current = context.get_state(lambda: 0)
    if context.operation_name == "add":
        context.set_state(current + context.get_input())
    elif context.operation_name == "delete":
        context.destruct_on_exit()


@functools.lru_cache(maxsize=1)
def _specs() -> list[Any]:
    return [_spec(function) for function in app.get_functions()]  # the SDK indexes an app once


def _instances(azurite: Azurite, store: AzureStore) -> Any:
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    return tables.get_table_client(f"{store.names.hub}Instances")


async def _signal(store: AzureStore, key: str, *steps: tuple[str, Any, str | None]) -> None:
    """Signal `@counter@key` through the engine, step by step: (operation, input, the state it then has)."""
    engine = Engine(store, VirtualClock(auto_skip=True), DurableRegistry(_specs()), store.names.hub,
                    None, poll_interval=0.05)  # type: ignore[arg-type]  # runs no activities
    await engine.start()
    try:
        for operation, value, expected in steps:
            await engine.signal_entity("counter", key, operation, json.dumps(json.dumps(value)))  # as the client sends it
            for _ in range(400):
                if await engine.read_entity("counter", key) == expected:
                    break
                await asyncio.sleep(0.025)
            else:
                raise AssertionError(f"{operation} never ran")
    finally:
        await engine.stop()


def test_signaled_entity_row_has_the_provider_layout(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    run(_signal(azure_store, "k1", ("add", 5, "5")))
    row = _instances(azurite, azure_store).get_entity("@counter@k1", "")
    assert json.loads(row["Input"]) == {"exists": True, "state": "5", "sorter": {}}
    assert row["Input"] == '{"exists":true,"state":"5","sorter":{}}'
    assert row["CustomStatus"] == '{"entityExists":true}'
    assert re.fullmatch("[0-9a-f]{32}", row["ExecutionId"])            # Guid.ToString("N")
    assert (row["Name"], row["Version"], row["RuntimeStatus"]) == ("@counter@k1", "", "Running")
    assert "Output" not in row

    state = run(azure_store.get_instance("@counter@k1"))             # what the engine sees: as before
    assert (state.name, state.execution_id, state.output, state.input, state.custom_status) == (
        "counter", "", "5", None, None)
    [listed], _ = run(azure_store.query_instances(InstanceQuery(instance_id_prefix="@counter@")))
    assert (listed.name, listed.output, listed.execution_id) == ("counter", "5", "")


def test_deleted_entity_has_no_state(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    run(_signal(azure_store, "k1", ("add", 2, "2"), ("delete", None, None)))
    row = _instances(azurite, azure_store).get_entity("@counter@k1", "")
    assert (row["Input"], row["CustomStatus"]) == ('{"sorter":{}}', "{}")
    assert run(azure_store.get_instance("@counter@k1")).output is None


def test_large_entity_state_goes_to_a_blob(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    big = json.dumps("☃" * 40_000)
    entity = InstanceState("@counter@big", "counter", "", RuntimeStatus.Running, T0, T0, output=big)
    run(azure_store.instances.write(entity, rows.HubEtag(None)))
    row = _instances(azurite, azure_store).get_entity("@counter@big", "")
    name = azure_store.blobs.name_in(row["Input"])
    assert name == "@counter@big/instance--Input.json.gz"
    assert json.loads(run(azure_store.blobs.value(name)))["state"] == big
    assert run(azure_store.get_instance("@counter@big")).output == big


def test_rows_in_the_old_layout_still_read(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    table = _instances(azurite, azure_store)
    common = {"RowKey": "", "Version": "", "ExecutionId": "", "RuntimeStatus": "Running", "CreatedTime": T0,
              "LastUpdatedTime": T0, "CustomStatus": "null", "TaskHubName": azure_store.names.hub,
              "Generation": 0, "Tags": "null"}
    table.upsert_entity({**common, "PartitionKey": "@counter@old", "Name": "counter", "Output": "7"},
                        mode=UpdateMode.REPLACE)
    table.upsert_entity({**common, "PartitionKey": "@counter@gone", "Name": "counter"}, mode=UpdateMode.REPLACE)
    old = run(azure_store.get_instance("@counter@old"))
    assert (old.name, old.execution_id, old.output, old.input, old.custom_status) == ("counter", "", "7", None, None)
    assert run(azure_store.get_instance("@counter@gone")).output is None
    run(_signal(azure_store, "old", ("add", 3, "10")))                  # the engine carries on from it
    row = table.get_entity("@counter@old", "")
    assert (row["Input"], "Output" in row) == ('{"exists":true,"state":"10","sorter":{}}', False)


def test_rows_written_by_the_real_host_read(azurite: Azurite, azure_store: AzureStore, run: Run) -> None:
    """DTCore's current format has no `exists`: the state is there or not."""
    table = _instances(azurite, azure_store)
    table.upsert_entity({"PartitionKey": "@counter@dt", "RowKey": "", "Name": "@counter@dt", "Version": "",
                         "ExecutionId": "0123456789abcdef0123456789abcdef", "RuntimeStatus": "Running",
                         "CreatedTime": T0, "LastUpdatedTime": T0, "CustomStatus": '{"entityExists":true}',
                         "Input": '{"state":"{\\"n\\":1}","sorter":{}}', "TaskHubName": azure_store.names.hub})
    state = run(azure_store.get_instance("@counter@dt"))
    assert (state.name, state.execution_id, state.output, state.custom_status) == ("counter", "", '{"n":1}', None)
