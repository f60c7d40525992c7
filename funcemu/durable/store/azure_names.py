"""Names, keys and routing of an Azure Storage task hub, exactly as DurableTask.AzureStorage spells them.

See docs/azure-storage-taskhub.md: §1 (resource names, hub name rule), §2.1 (partition-key escaping),
§5.1 (FNV-1a control-queue routing). Nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from funcemu.errors import FuncemuError

HUB_NAME_RULE = r"^[A-Za-z][A-Za-z0-9]{2,44}$"
MAX_PARTITIONS = 16
SENTINEL_ROW = "sentinel"

# The well-known development account of every storage emulator (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEV_STORAGE = (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
               f"BlobEndpoint=http://127.0.0.1:10000/{DEV_ACCOUNT};"
               f"QueueEndpoint=http://127.0.0.1:10001/{DEV_ACCOUNT};"
               f"TableEndpoint=http://127.0.0.1:10002/{DEV_ACCOUNT};")


class AzureStoreError(FuncemuError):
    """A problem with the Azure Storage task hub that a person must fix (name, account, endpoint)."""


class TaskHubNameError(AzureStoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"task hub name {name!r} must match {HUB_NAME_RULE} (letters and digits, starting "
                         "with a letter, 3 to 45 characters), because it names Azure tables, queues and "
                         "blob containers")


class StorageUnreachableError(AzureStoreError):
    def __init__(self, service: str, endpoint: str, reason: str) -> None:
        super().__init__(f"cannot reach the Azure Storage {service} endpoint {endpoint}: {reason}. "
                         "Is Azurite running (npm run azurite / docker compose up -d azurite), or is "
                         "AzureWebJobsStorage pointing at the right account?")


@dataclass(frozen=True)
class HubNames:
    """Every resource of one task hub; tables keep the hub's case, queues and containers are lower case."""

    hub: str
    history_table: str
    instances_table: str
    partitions_table: str
    control_queues: tuple[str, ...]
    workitems_queue: str
    largemessages_container: str
    applease_container: str
    appleaseinfo_blob: str

    @property
    def queues(self) -> tuple[str, ...]:
        return (*self.control_queues, self.workitems_queue)


def hub_names(hub: str, partition_count: int) -> HubNames:
    """Validate the hub name and partition count, then name the hub's resources (§1.1)."""
    if not re.fullmatch(HUB_NAME_RULE, hub or ""):
        raise TaskHubNameError(hub)
    if not 1 <= partition_count <= MAX_PARTITIONS:
        raise AzureStoreError(f"partition count {partition_count} must be between 1 and {MAX_PARTITIONS}")
    low = hub.lower()
    return HubNames(
        hub=hub, history_table=f"{hub}History", instances_table=f"{hub}Instances",
        partitions_table=f"{hub}Partitions",
        control_queues=tuple(f"{low}-control-{index:02d}" for index in range(partition_count)),
        workitems_queue=f"{low}-workitems", largemessages_container=f"{low}-largemessages",
        applease_container=f"{low}-applease", appleaseinfo_blob=f"{low}-appleaseinfo")


def fnv1a_32(text: str) -> int:
    """FNV-1a over the UTF-8 bytes, 32-bit: the provider's control-queue hash (§5.1)."""
    value = 2166136261
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


def partition_of(instance_id: str, partition_count: int) -> int:
    return fnv1a_32(instance_id) % partition_count


_ESCAPES = {"^": "^^", "/": "^0", "\\": "^1", "#": "^2", "?": "^3"}
_UNESCAPES = {"^": "^", "0": "/", "1": "\\", "2": "#", "3": "?"}


def escape_key(instance_id: str) -> str:
    """The table PartitionKey of an instance id (§2.1); apply once, never twice."""
    out = []
    for char in instance_id:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code <= 0x1F or 0x7F <= code <= 0x9F:
            out.append("^" + chr(0xC0 + code))
        else:
            out.append(char)
    return "".join(out)


def unescape_key(key: str) -> str:
    out, chars = [], iter(key)
    for char in chars:
        if char != "^":
            out.append(char)
            continue
        escaped = next(chars, "")
        if escaped in _UNESCAPES:
            out.append(_UNESCAPES[escaped])
        elif escaped and ord(escaped) >= 0xC0:
            out.append(chr(ord(escaped) - 0xC0))
        else:
            out.append(escaped)
    return "".join(out)


def odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(value: datetime) -> str:
    utc = value.astimezone(timezone.utc)
    return f"datetime'{utc.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z'"


def prefix_filter(column: str, prefix: str) -> str:
    """Rows whose `column` starts with `prefix`, as a range the Table service can answer from its index."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return f"{column} ge {odata_string(prefix)} and {column} lt {odata_string(upper)}"


def expand_connection_string(connection_string: str) -> str:
    """`UseDevelopmentStorage=true` means Azurite on 127.0.0.1:10000-10002; anything else is kept."""
    parts = dict(_pairs(connection_string))
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        return DEV_STORAGE
    return connection_string


def _pairs(connection_string: str) -> list[tuple[str, str]]:
    pairs = []
    for part in connection_string.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            pairs.append((key.strip().lower(), value.strip()))
    return pairs
