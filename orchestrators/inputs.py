"""Validation of what HTTP callers send: each problem becomes one 400 answer that names the field.

The starters call these helpers before they start an orchestration, so a bad request never creates an
instance. Every helper raises `InputError` with a message such as
`items[2].quantity must be an integer from 1 to 1000, got "two"`.
"""

import json
import math
from typing import Any

import azure.functions as func


class InputError(ValueError):
    """A request the caller must fix; the message is shown to the caller as is."""


def json_object(req: func.HttpRequest) -> dict[str, Any]:
    try:
        body = req.get_json()
    except ValueError:
        raise InputError("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InputError(f"the request body must be a JSON object, got {_kind(body)}")
    return body


def optional_json_object(req: func.HttpRequest) -> dict[str, Any]:
    """The body as a JSON object, or {} when the request has no body."""
    return json_object(req) if req.get_body() else {}


def text(
    data: dict[str, Any], field: str, *, where: str = "", max_length: int = 200, default: str | None = None
) -> str:
    value = data.get(field, default)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InputError(
            f"{where}{field} must be a non-empty string of at most {max_length} "
            f"characters, got {_show(value)}"
        )
    return value


def integer(
    data: dict[str, Any], field: str, *, low: int, high: int, where: str = "", default: int | None = None
) -> int:
    value = data.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{where}{field} must be an integer from {low} to {high}, got {_show(value)}")
    return value


def number(
    data: dict[str, Any],
    field: str,
    *,
    low: float,
    high: float,
    where: str = "",
    default: float | None = None,
) -> float:
    value = data.get(field, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise InputError(
            f"{where}{field} must be a number from {_plain(low)} to {_plain(high)}, got {_show(value)}"
        )
    return float(value)


def objects(data: dict[str, Any], field: str, *, max_items: int) -> list[dict[str, Any]]:
    """A non-empty list of JSON objects, at most `max_items` long."""
    value = data.get(field)
    if not isinstance(value, list) or not 1 <= len(value) <= max_items:
        raise InputError(f"{field} must be a list of 1 to {max_items} objects, got {_show(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InputError(f"{field}[{index}] must be an object, got {_show(item)}")
    return value


def bad_request(error: InputError) -> func.HttpResponse:
    return error_response(400, str(error))


def error_response(status_code: int, message: str) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"error": message}), status_code=status_code, mimetype="application/json"
    )


def json_response(value: Any, status_code: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value), status_code=status_code, mimetype="application/json")


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    shown = json.dumps(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
