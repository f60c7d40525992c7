"""The Azure Storage connection of the durable store, resolved as the host resolves connections."""

from __future__ import annotations

import os
from typing import Any

from funcemu.config import ConfigError, HostConfig, parse_timespan


def resolve_connection(name: str, environ: Any = None) -> str | None:
    """`AzureWebJobs<name>` first (connection strings section, then setting), then `<name>` (§5.4)."""
    environ = os.environ if environ is None else environ
    for candidate in (f"AzureWebJobs{name}", name):
        value = environ.get(f"ConnectionStrings:{candidate}") or environ.get(candidate)
        if value:
            return str(value)
    return None


def storage_connection(config: HostConfig) -> dict[str, Any]:
    provider = config.host_json.get("extensions.durableTask.storageProvider") or {}
    name = provider.get("connectionName") or provider.get("connectionStringName") or "Storage"
    connection = resolve_connection(name)
    if not connection:
        raise ConfigError(config.host_json.path, f"Storage account connection string 'AzureWebJobs{name}' does "
                          "not exist. Make sure that it is a defined App Setting (local.settings.json Values).",
                          key="extensions.durableTask.storageProvider.connectionName")
    options: dict[str, Any] = {"connection_string": connection}
    if "partitionCount" in provider:
        options["partition_count"] = int(provider["partitionCount"])
    if "maxQueuePollingInterval" in provider:
        options["max_queue_polling_interval"] = parse_timespan(provider["maxQueuePollingInterval"])
    return options
