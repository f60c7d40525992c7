"""The extension's texts for an unknown durable function (DurableTaskExtension.GetInvalid*FunctionMessage)."""

from __future__ import annotations

from typing import Any

import pytest

from funcemu.app import FunctionSpec
from funcemu.durable.registry import DurableRegistry


def spec(name: str, trigger: str) -> FunctionSpec:
    return FunctionSpec(name=name, function=None, callable=lambda: None, bindings=[],
                        trigger={"type": trigger, "name": "context"}, directory=".", is_async=False,
                        needs_context=False)


def registry(*functions: tuple[str, str]) -> DurableRegistry:
    return DurableRegistry([spec(name, trigger) for name, trigger in functions])


ORCHESTRATORS = [("hello", "orchestrationTrigger"), ("Other", "orchestrationTrigger")]
ACTIVITIES = [("say", "activityTrigger"), ("add", "activityTrigger")]
ENTITIES = [("counter", "entityTrigger"), ("Cart", "entityTrigger")]


def head(name: str, kind: str) -> str:
    return f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function. Additional info: "


@pytest.mark.parametrize(("method", "kind", "functions", "tail"), [
    ("unknown_orchestrator_message", "orchestrator", ORCHESTRATORS,
     "The following are the known orchestrator functions: 'hello', 'Other'."),
    ("unknown_orchestrator_message", "orchestrator", ACTIVITIES + ENTITIES,
     "No orchestrator functions are currently registered!"),
    ("unknown_activity_message", "activity", ACTIVITIES,
     "The following are the known activity functions: 'say', 'add'."),
    ("unknown_activity_message", "activity", ORCHESTRATORS, "No activity functions are currently registered!"),
    ("unknown_entity_message", "entity", ORCHESTRATORS + ENTITIES,
     "The following are the known entity functions: 'counter', 'Cart'."),
    ("unknown_entity_message", "entity", ACTIVITIES, "No entity functions are currently registered!"),
])
def test_unknown_function_messages(method: str, kind: str, functions: list[tuple[str, str]], tail: str) -> None:
    message: Any = getattr(registry(*functions), method)("nope")
    assert message == head("nope", kind) + tail


def test_unknown_entity_message_follows_the_extensions_orchestrator_check() -> None:
    """2.13.7 tests knownOrchestrators.Keys.Count, not knownEntities, before listing the entities."""
    assert registry(*ENTITIES).unknown_entity_message("x") == (
        head("x", "entity") + "No entity functions are currently registered!")
    assert registry(*ORCHESTRATORS).unknown_entity_message("x") == (
        head("x", "entity") + "The following are the known entity functions: ''.")
