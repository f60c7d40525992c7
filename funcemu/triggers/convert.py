"""Values in and out of user functions, converted the way the Python worker converts them (§3.5, §3.6).

The host side hands the worker a `meta.Datum` (TypedData) plus trigger metadata; the worker picks the
converter registered for the binding type in azure-functions, unless the parameter is annotated exactly
`str` or `bytes`, in which case the generic converter passes the raw value through. Going out, the
worker encodes with the same choice. Using the library's own converters keeps the objects real SDK
types (`func.QueueMessage`, `func.InputStream`, `func.TimerRequest`).
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from azure.functions import meta

from funcemu.app import FunctionSpec
from funcemu.jsontext import compact

RAW_TYPES = (str, bytes)


@cache
def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations (string annotations from `from __future__ import annotations` included)."""
    try:
        return typing.get_type_hints(function)
    except Exception:  # unresolvable forward references: fall back to what the signature holds
        signature = inspect.signature(function)
        hints = {name: p.annotation for name, p in signature.parameters.items()
                 if p.annotation is not inspect.Parameter.empty}
        if signature.return_annotation is not inspect.Signature.empty:
            hints["return"] = signature.return_annotation
        return hints


def annotation(spec: FunctionSpec, binding_name: str) -> Any:
    """The parameter's annotation (`Out[T]` unwrapped to `T`), or the return annotation for `$return`."""
    hint = _hints(spec.callable).get("return" if binding_name == "$return" else binding_name)
    origin = getattr(hint, "__origin__", None)
    args = getattr(hint, "__args__", None)
    if origin is not None and getattr(origin, "__name__", "") == "Out" and args:
        return args[0]
    return hint


def is_raw(hint: Any) -> bool:
    return hint in RAW_TYPES


def generic_decode(datum: meta.Datum | None) -> Any:
    if datum is None or datum.type is None:
        return None
    if datum.type in ("string", "bytes", "json"):
        return datum.value
    raise ValueError(f'unexpected type of data received for the "generic" binding: {datum.type!r}')


def generic_encode(value: Any) -> meta.Datum:
    if isinstance(value, str):
        return meta.Datum(value, "string")
    if isinstance(value, (bytes, bytearray)):
        return meta.Datum(bytes(value), "bytes")
    if value is None:
        return meta.Datum(None, None)
    if isinstance(value, (dict, list)):
        return meta.Datum(json.dumps(value), "json")
    if isinstance(value, int):  # bool is an int here too, as in the worker
        return meta.Datum(int(value), "int")
    if isinstance(value, float):
        return meta.Datum(value, "double")
    raise TypeError(f"unable to encode outgoing TypedData: unsupported type \"generic\" for Python type "
                    f"\"{type(value).__name__}\"")


def decode_input(spec: FunctionSpec, binding: dict[str, Any], datum: meta.Datum | None,
                 trigger_metadata: dict[str, meta.Datum] | None) -> Any:
    """The value the worker passes for `binding` given the host's datum (trigger metadata for triggers)."""
    converter = meta.get_binding_registry().get(binding["type"])
    if converter is None or is_raw(annotation(spec, binding["name"])):
        return generic_decode(datum)
    return converter.decode(datum, trigger_metadata=trigger_metadata)


def encode_output(spec: FunctionSpec, binding: dict[str, Any], value: Any) -> meta.Datum:
    """What the worker sends the host for an OUT binding (or `$return`) set to `value`."""
    hint = annotation(spec, binding["name"])
    converter = meta.get_binding_registry().get(binding["type"])
    if converter is None or is_raw(hint):
        return generic_encode(value)
    try:
        return converter.encode(value, expected_type=hint if isinstance(hint, type) else None)
    except NotImplementedError:
        raise TypeError(f"unable to encode outgoing TypedData: unsupported type \"{binding['type']}\" for "
                        f"Python type \"{type(value).__name__}\"") from None


def datum_bytes(datum: meta.Datum) -> bytes:
    """The payload of an outgoing datum as the host stores it (text as UTF-8)."""
    if datum.type == "bytes":
        return bytes(datum.value)
    return datum_text(datum).encode("utf-8")


def datum_text(datum: meta.Datum) -> str:
    if datum.type == "bytes":
        return bytes(datum.value).decode("utf-8", errors="replace")
    if datum.type == "double":
        return repr(float(datum.value))
    return "" if datum.value is None else str(datum.value)


def json_datum(value: Any) -> meta.Datum:
    """Non-string trigger metadata travels as JSON TypedData (e.g. DequeueCount `1`), written by the
    host's ToRpcDefault (JsonConvert.SerializeObject: compact, non-ASCII kept)."""
    return meta.Datum(compact(value), "json")


def metadata_datums(system: dict[str, Any]) -> dict[str, meta.Datum]:
    """Trigger metadata for the worker: strings as string TypedData, anything else as JSON."""
    return {key: meta.Datum(value, "string") if isinstance(value, str) else json_datum(value)
            for key, value in system.items()}


def payload_datum(body: bytes) -> meta.Datum:
    """A queue message body: a string when it is UTF-8 text, else bytes."""
    try:
        return meta.Datum(body.decode("utf-8"), "string")
    except UnicodeDecodeError:
        return meta.Datum(body, "bytes")
