"""Timer, queue and blob triggers, and the queue/blob/table bindings, against Azure Storage (Azurite).

`start_triggers(host, stack)` is what the host calls at startup; everything it starts is torn down
through `stack`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from funcemu.triggers.blob import BlobPathError
from funcemu.triggers.expressions import BindingExpressionError
from funcemu.triggers.outputs import OutputBindingError
from funcemu.triggers.queue import QueueNameError
from funcemu.triggers.schedule import ScheduleError, TimeZoneError
from funcemu.triggers.startup import TriggerStartup
from funcemu.triggers.storage import StorageConnectionError

__all__ = ["start_triggers", "BindingExpressionError", "BlobPathError", "OutputBindingError", "QueueNameError",
           "ScheduleError", "StorageConnectionError", "TimeZoneError"]


async def start_triggers(host: Any, stack: contextlib.AsyncExitStack) -> None:
    """Validate and probe every storage binding, register the bindings and admin invokers, start listeners."""
    await TriggerStartup(host).start(stack)
