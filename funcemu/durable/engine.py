"""The durable dispatcher: runs orchestration episodes and activities, applies actions, checkpoints.

(Interface first; the body is being written. `durable/api.py` calls only the public methods below.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from funcemu.durable.store.base import InstanceQuery, InstanceState, Store
from funcemu.errors import FuncemuError


class EngineError(FuncemuError):
    """A request the engine refuses; `api.py` maps subclasses to status codes."""


class UnknownOrchestratorError(EngineError):
    """Message text is the host's: "The function '<fn>' doesn't exist, is disabled, or is not an
    orchestrator function. Additional info: The following are the known orchestrator functions: 'a', 'b'." """


class InstanceNotFoundError(EngineError):
    pass


class InvalidStateError(EngineError):
    """The operation is not allowed in the instance's current status (410 or 500, by operation)."""


class Engine:
    hub_name: str
    store: Store

    def now(self) -> datetime:
        """The engine clock (real or virtual), timezone-aware UTC."""
        raise NotImplementedError

    def orchestrator_names(self) -> list[str]:
        raise NotImplementedError

    async def start_new(self, name: str, instance_id: str | None, input_text: str | None) -> str:
        """Start (or replace) an instance. `input_text` is stored as ExecutionStarted.Input (JSON text
        of the value, so a Python-client start stores a JSON string holding JSON text). Raises
        UnknownOrchestratorError, ValueError (invalid instance id). Returns the instance id."""
        raise NotImplementedError

    async def get_instance(self, instance_id: str) -> InstanceState | None:
        raise NotImplementedError

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceState], str | None]:
        raise NotImplementedError

    async def purge(self, instance_ids: list[str]) -> int:
        raise NotImplementedError

    async def raise_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        """Raises InstanceNotFoundError, InvalidStateError (terminal: 410)."""
        raise NotImplementedError

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        raise NotImplementedError

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        raise NotImplementedError

    async def resume(self, instance_id: str, reason: str | None) -> None:
        raise NotImplementedError

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        raise NotImplementedError

    async def restart(self, instance_id: str, new_instance_id: bool) -> str:
        raise NotImplementedError

    async def wait_for_completion(self, instance_id: str, timeout: float) -> InstanceState | None:
        """Wait (event driven, no polling) until the instance is terminal or `timeout` seconds pass;
        return its latest state."""
        raise NotImplementedError

    async def signal_entity(self, name: str, key: str, operation: str, input_text: str | None) -> None:
        raise NotImplementedError

    async def read_entity(self, name: str, key: str) -> str | None:
        """The entity's state as JSON text, or None when it does not exist."""
        raise NotImplementedError
