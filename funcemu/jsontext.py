"""JSON text as the host's Newtonsoft writes it with `Formatting.None` (SerializeObject, JToken.ToString
of a value written compactly): no whitespace, non-ASCII kept. Standard library only, for every layer."""

from __future__ import annotations

import json
from typing import Any


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
