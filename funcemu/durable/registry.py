"""The durable functions of an app by kind, looked up by durable name, case-insensitively (as the host)."""

from __future__ import annotations

from funcemu.app import FunctionSpec

KINDS = {"orchestrationTrigger": "orchestrator", "activityTrigger": "activity", "entityTrigger": "entity"}


class DurableRegistry:
    def __init__(self, functions: list[FunctionSpec]) -> None:
        self._by_kind: dict[str, dict[str, FunctionSpec]] = {kind: {} for kind in KINDS.values()}
        for spec in functions:
            kind = KINDS.get(spec.trigger_type)
            if kind:
                self._by_kind[kind][spec.durable_name.lower()] = spec

    def orchestrator(self, name: str) -> FunctionSpec | None:
        return self._by_kind["orchestrator"].get(name.lower())

    def activity(self, name: str) -> FunctionSpec | None:
        return self._by_kind["activity"].get(name.lower())

    def entity(self, name: str) -> FunctionSpec | None:
        return self._by_kind["entity"].get(name.lower())

    def orchestrator_names(self) -> list[str]:
        return [s.durable_name for s in self._by_kind["orchestrator"].values()]

    def _unknown(self, name: str, kind: str, listed_if: str | None = None) -> str:
        """The extension's GetInvalid<Kind>FunctionMessage. The list is given when functions of kind
        `listed_if` (default: `kind`) are registered, else "No ... currently registered!"."""
        message = f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function. Additional info: "
        if not self._by_kind[listed_if or kind]:
            return message + f"No {kind} functions are currently registered!"
        known = "', '".join(s.durable_name for s in self._by_kind[kind].values())
        return message + f"The following are the known {kind} functions: '{known}'."

    def unknown_orchestrator_message(self, name: str) -> str:
        return self._unknown(name, "orchestrator")

    def unknown_activity_message(self, name: str) -> str:
        return self._unknown(name, "activity")

    def unknown_entity_message(self, name: str) -> str:
        # The extension (2.13.7 GetInvalidEntityFunctionMessage) tests knownOrchestrators, not
        # knownEntities, before listing: with orchestrators but no entities the list is "''".
        return self._unknown(name, "entity", listed_if="orchestrator")
