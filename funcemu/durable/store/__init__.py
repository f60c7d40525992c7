"""Durable stores: the `Store` interface and the factory that picks a backend by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from funcemu.durable.store.base import (
    ActivityItem,
    Checkpoint,
    InstanceQuery,
    InstanceState,
    Message,
    RuntimeStatus,
    StaleCheckpointError,
    Store,
)
from funcemu.durable.store.memory import MemoryStore
from funcemu.durable.store.sqlite import SqliteStore, SqliteStoreError
from funcemu.errors import FuncemuError

__all__ = [
    "ActivityItem", "Checkpoint", "InstanceQuery", "InstanceState", "MemoryStore", "Message",
    "RuntimeStatus", "SqliteStore", "SqliteStoreError", "StaleCheckpointError", "Store",
    "StoreConfigError", "STORE_KINDS", "open_store",
]

STORE_KINDS = ("memory", "sqlite", "azure")


class StoreConfigError(FuncemuError):
    def __init__(self, kind: str, problem: str) -> None:
        super().__init__(f"storage '{kind}': {problem}")


def open_store(kind: str, *, data_dir: Path, hub_name: str, **options: Any) -> Store:
    """Build the store named `kind` for task hub `hub_name`; the caller awaits its `open()`.

    sqlite keeps the hub in `<data_dir>/<hub_name>.sqlite3`; azure needs `connection_string=`.
    """
    if kind == "memory":
        _no_options(kind, options)
        return MemoryStore()
    if kind == "sqlite":
        _no_options(kind, options)
        return SqliteStore(Path(data_dir) / f"{hub_name}.sqlite3")
    if kind == "azure":
        return _azure_store(hub_name, options)
    raise StoreConfigError(kind, f"unknown kind; expected one of {', '.join(STORE_KINDS)}")


def _azure_store(hub_name: str, options: dict[str, Any]) -> Store:
    connection_string = options.pop("connection_string", None)
    if not connection_string:
        raise StoreConfigError("azure", "no connection string (set AzureWebJobsStorage, "
                                        "e.g. UseDevelopmentStorage=true for Azurite)")
    try:
        from funcemu.durable.store.azure import AzureStore
    except ImportError as error:
        raise StoreConfigError("azure", f"the Azure Storage store cannot be loaded ({error})") from error
    return AzureStore(connection_string, hub_name, **options)  # type: ignore[no-any-return]


def _no_options(kind: str, options: dict[str, Any]) -> None:
    """Options set to None count as unset, so callers can pass every backend's options."""
    given = sorted(name for name, value in options.items() if value is not None)
    if given:
        raise StoreConfigError(kind, f"unexpected option(s) {', '.join(given)}; this store takes none")
