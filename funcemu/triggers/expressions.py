"""Binding expressions (§5.4): `%Setting%` from app settings, `{name}` from the trigger's data.

`{queueTrigger}`, `{name}` (blob path captures), route parameters and JSON body properties come from
the metadata a trigger hands to `Host.call`; `{rand-guid}` and `{DateTime}` (with an optional
`:format`, .NET style) and `sys.randguid` / `sys.utcnow` / `sys.methodname` are built in.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from funcemu.errors import FuncemuError

SETTING = re.compile(r"%([^%\s]+)%")
# As the SDK's BindingTemplateParser: `{{` / `}}` are a literal brace, `{name}` a parameter.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]+)\}|[^{}]+|[{}]")
NOT_RESOLVED = {"name", "type", "direction", "dataType"}
DEFAULT_DATETIME_FORMAT = "yyyy-MM-ddTHH-mm-ssZ"   # `{DateTime}` => 2018-02-16T17-59-55Z (host docs)
_DOTNET_TOKENS = re.compile(r"yyyy|yy|MM|dd|HH|hh|mm|ss|fff|ff|f|tt|.", re.DOTALL)


class BindingExpressionError(FuncemuError):
    pass


def resolve_settings(function: str, binding: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """A copy of `binding` with every `%Setting%` in its string properties replaced by the setting."""
    resolved = dict(binding)
    for key, value in binding.items():
        if key in NOT_RESOLVED or not isinstance(value, str):
            continue
        resolved[key] = SETTING.sub(_setting_replacer(function, binding, key, value, environ), value)
    return resolved


def _setting_replacer(function: str, binding: Mapping[str, Any], key: str, value: str,
                      environ: Mapping[str, str]) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        found = environ.get(name)
        if found is None:
            raise BindingExpressionError(
                f"Function '{function}' (binding '{binding.get('name')}'): {key} '{value}' refers to the app "
                f"setting '{name}', which does not exist. Define it in local.settings.json Values or the "
                "environment.")
        return found
    return replace


def tokens(template: str) -> list[tuple[str, bool]]:
    """`(text, is_parameter)` pieces of a template; `{{2014}}` is the literal `{2014}`. A stray or empty
    brace stays literal (the host rejects such a template when indexing)."""
    found = []
    for match in _TOKEN.finditer(template):
        text = match.group(0)
        if match.group(1) is not None:
            found.append((match.group(1), True))
        else:
            found.append((text[0] if text in ("{{", "}}") else text, False))
    return found


def parameters(template: str) -> list[str]:
    """The `{...}` expressions of a template, in order."""
    return [text for text, is_parameter in tokens(template) if is_parameter]


def render(template: str, data: Mapping[str, Any], *, function: str = "",
           now: datetime | None = None) -> str:
    """Fill every `{expr}` of `template` from `data` (case-insensitive, dotted paths) or the built-ins."""
    moment = now or datetime.now(timezone.utc)
    return "".join(_value(text, data, function, moment) if is_parameter else text
                   for text, is_parameter in tokens(template))


def _value(expression: str, data: Mapping[str, Any], function: str, now: datetime) -> str:
    name, _, fmt = expression.partition(":")
    name = name.strip()
    lowered = name.lower()
    if lowered in ("rand-guid", "sys.randguid"):
        return format_guid(uuid.uuid4(), fmt)
    if lowered == "sys.utcnow" or (lowered == "datetime" and not _has(data, name)):
        return format_datetime(now, fmt or DEFAULT_DATETIME_FORMAT)
    if lowered == "sys.methodname":
        return function
    try:
        value = lookup(data, name)
    except KeyError:
        raise BindingExpressionError(f"No value for named parameter '{name}'.") from None
    text = to_text(value)
    if text is None:
        raise BindingExpressionError(f"Binding parameter '{name}' has a value that cannot be used in a path "
                                     f"(only strings, numbers and GUIDs can): {value!r}")
    return text


def _has(data: Mapping[str, Any], name: str) -> bool:
    try:
        lookup(data, name)
    except KeyError:
        return False
    return True


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """`data["a"]["b"]` for `a.b`, matching keys case-insensitively (the host's binding data is)."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            raise KeyError(path)
        key = part if part in node else next((k for k in node if str(k).lower() == part.lower()), None)
        if key is None:
            raise KeyError(path)
        node = node[key]
    return node


def to_text(value: Any) -> str | None:
    """As the host's ConvertParameterValueToString: strings, numbers, GUIDs and JSON primitives only."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (str, int, float, uuid.UUID)):
        return str(value)
    if value is None:
        return ""
    return None


def format_guid(value: uuid.UUID, fmt: str = "") -> str:
    text = str(value)
    return {"N": value.hex, "B": "{" + text + "}", "P": "(" + text + ")"}.get(fmt.strip().upper(), text)


def format_datetime(moment: datetime, dotnet_format: str) -> str:
    """A .NET custom date format (yyyy, MM, dd, HH, hh, mm, ss, fff, tt; other characters literal)."""
    out = []
    for token in _DOTNET_TOKENS.findall(dotnet_format):
        if token in ("fff", "ff", "f"):
            out.append(f"{moment.microsecond:06d}"[:len(token)])
        elif len(token) > 1:
            out.append(moment.strftime({"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "hh": "%I",
                                        "mm": "%M", "ss": "%S", "tt": "%p"}[token]))
        else:
            out.append(token)
    return "".join(out)
