"""Durable entities: instances `@name@key` whose pending operations run as one batch through the SDK.

State is kept as JSON text in the instance's `output`; callers (orchestrations using `call_entity`)
get `EventRaised{Name: <request id>, Input: {"result": <JSON text>[, "exceptionType": "Error"]}}`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from funcemu.durable import history as h
from funcemu.durable.history import EventType
from funcemu.durable.store.base import Checkpoint, InstanceState, Message, RuntimeStatus

if TYPE_CHECKING:
    from funcemu.durable.engine import Engine

log = logging.getLogger("funcemu.durable")


def entity_instance_id(name: str, key: str) -> str:
    return f"@{name.lower()}@{key}"


def parse_entity_id(instance_id: str) -> tuple[str, str]:
    name, _, key = instance_id[1:].partition("@")
    return name, key


def request_event(now: datetime, request: dict[str, Any]) -> dict[str, Any]:
    """An operation request as the entity receives it: EventRaised named after the operation."""
    return h.event_raised(now, str(request.get("op")), json.dumps(request))


async def run_entity_batch(engine: Engine, instance_id: str, messages: list[Message], now: datetime) -> None:
    name, key = parse_entity_id(instance_id)
    state = await engine.store.get_instance(instance_id)
    requests = [json.loads(m.event["Input"]) for m in messages
                if m.event["EventType"] == EventType.EventRaised and m.event.get("Input")]
    new_state = _entity_state(instance_id, name, state, now)
    cp = Checkpoint(instance_id=instance_id, etag=state.etag if state else None, state=new_state,
                    consumed=messages)
    spec = engine.registry.entity(name)
    if spec is None:
        results = [{"isError": True, "result": json.dumps(engine.registry.unknown_entity_message(name))}
                   for _ in requests]
    else:
        results = _run_batch(spec.callable, name, key, state, requests, new_state)
    cp.messages.extend(_responses(requests, results, now))
    await engine.store.checkpoint(cp)
    if cp.messages:
        engine.wake()


def _entity_state(instance_id: str, name: str, state: InstanceState | None, now: datetime) -> InstanceState:
    if state is not None:
        return dataclasses.replace(state, last_updated_time=now)
    return InstanceState(instance_id=instance_id, name=name, execution_id="", runtime_status=RuntimeStatus.Running,
                         created_time=now, last_updated_time=now)


def _run_batch(handler: Any, name: str, key: str, state: InstanceState | None, requests: list[dict[str, Any]],
               new_state: InstanceState) -> list[dict[str, Any]]:
    # RequestMessage.Input is already the JSON text of the JSON text the SDK decodes twice (§4.2)
    batch = [{"name": r.get("op"), "isSignal": bool(r.get("signal")), "input": r.get("input")} for r in requests]
    document = {"self": {"name": name, "key": key}, "exists": bool(state and state.output is not None),
                "state": state.output if state else None, "batch": batch}
    try:
        result = json.loads(handler(json.dumps(document)))
    except Exception as exc:  # the whole batch failed: every caller gets the error
        log.exception("entity '@%s@%s' failed", name, key)
        return [{"isError": True, "result": json.dumps(f"{type(exc).__name__}: {exc}")} for _ in requests]
    new_state.output = result.get("entityState") if result.get("entityExists") else None
    return list(result.get("results") or [])


def _responses(requests: list[dict[str, Any]], results: list[dict[str, Any]], now: datetime) -> list[Message]:
    out = []
    for request, result in zip(requests, results, strict=False):
        if request.get("signal") or not request.get("parent"):
            continue
        payload: dict[str, Any] = {"result": result.get("result")}
        if result.get("isError"):
            payload["exceptionType"] = "Error"
        event = h.event_raised(now, str(request.get("id")), json.dumps(payload, separators=(",", ":")))  # Newtonsoft
        out.append(Message(str(request["parent"]), event, request.get("parentExecution")))
    return out
