"""Inline route constraints as ASP.NET Core resolves and tests them (invariant culture; functions-host.md §4.2).

`resolve_constraint("range(1,5)")` returns a `Constraint` whose `test(value)` says whether a route value
passes; a constraint ASP.NET would reject raises ValueError saying what is wrong.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Constraint", "resolve_constraint"]


_WS = r"[\t-\r ]*"  # .NET number parsing skips U+0009-U+000D and spaces
_INTEGER = re.compile(rf"{_WS}([+-]?[0-9]+){_WS}")
_NUMBER = r"(?:[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)"  # AllowThousands: commas after the first digit
_DECIMAL = re.compile(rf"{_WS}([+-]?){_NUMBER}([+-]?){_WS}")
_DOUBLE = re.compile(rf"{_WS}(?:[+-]?{_NUMBER}(?:[eE][+-]?[0-9]+)?|[+-]?infinity|nan){_WS}", re.IGNORECASE)
_DECIMAL_MAX = Decimal("79228162514264337593543950335")
_HEX = "[0-9A-Fa-f]"
_GUID_D = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_GUID = re.compile(rf"{_HEX}{{32}}|{_GUID_D}|\{{{_GUID_D}\}}|\({_GUID_D}\)")
_TIME = r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d{1,7})?)?(?: ?(?P<p>[AP]M))?"
# A documented subset of DateTime.TryParse(invariant): ISO 8601, M/d/yyyy, yyyy/M/d, with or without a time.
_DATETIMES = [
    re.compile(
        rf"(?P<y>\d{{4}})-(?P<m>\d{{1,2}})-(?P<d>\d{{1,2}})(?:[T ]{_TIME})?(?:Z|[+-]\d{{2}}(?::?\d{{2}})?)?",
        re.I,
    ),
    re.compile(rf"(?P<m>\d{{1,2}})/(?P<d>\d{{1,2}})/(?P<y>\d{{4}}|\d{{2}})(?: {_TIME})?", re.I),
    re.compile(rf"(?P<y>\d{{4}})/(?P<m>\d{{1,2}})/(?P<d>\d{{1,2}})(?: {_TIME})?", re.I),
    re.compile(_TIME, re.I),
]


def _parse_integer(text: str, bits: int) -> int | None:
    """Int32/Int64.TryParse(NumberStyles.Integer, invariant)."""
    found = _INTEGER.fullmatch(text)
    if found is None:
        return None
    number = int(found.group(1))
    limit = 1 << (bits - 1)
    return number if -limit <= number < limit else None


def _is_decimal(text: str) -> bool:
    found = _DECIMAL.fullmatch(text)
    if found is None or (found.group(1) and found.group(2)):
        return False
    digits = text.strip(" \t\n\v\f\r").strip("+-").replace(",", "")
    return Decimal(digits).copy_abs() <= _DECIMAL_MAX  # copy_abs: no rounding to 28 digits


def _is_datetime(text: str) -> bool:
    for pattern in _DATETIMES:
        found = pattern.fullmatch(text.strip())
        if found is not None:
            return _valid_datetime(found.groupdict())
    return False


def _valid_datetime(parts: dict[str, str | None]) -> bool:
    year = int(parts.get("y") or 2000)
    year = year + 2000 if year < 100 else year
    hour = int(parts["H"] or 0)
    if parts["p"]:
        if hour > 12:
            return False
        hour = hour % 12 + (12 if parts["p"].upper() == "PM" else 0)
    month, day = int(parts.get("m") or 1), int(parts.get("d") or 1)
    try:
        _dt.datetime(year, month, day, hour, int(parts["M"] or 0), int(parts["S"] or 0))
    except ValueError:
        return False
    return True


def _is_guid(text: str) -> bool:
    """Guid.TryParse formats N, D, B and P (the X format's braces and commas never occur in URLs)."""
    return _GUID.fullmatch(text.strip()) is not None


def _is_file_name(text: str) -> bool:
    """FileNameRouteConstraint: the last path part has a dot followed by something other than dots."""
    last = text.rsplit("/", 1)[-1]
    dot = last.find(".")
    return dot >= 0 and last[dot + 1 :].strip(".") != ""


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _dotnet_regex(pattern: str) -> str:
    """Translate the .NET-only regex syntax users write in routes: named groups, backreferences, `\\z`, `\\Z`."""
    pattern = re.sub(
        r"(?<!\\)\(\?(?:<(?![=!])([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')", lambda m: f"(?P<{m[1] or m[2]}>", pattern
    )
    pattern = re.sub(r"\\k(?:<(\w+)>|'(\w+)')", lambda m: f"(?P={m[1] or m[2]})", pattern)
    return re.sub(r"(?<!\\)\\([zZ])", lambda m: r"\Z" if m[1] == "z" else r"(?=\n?\Z)", pattern)


Test = Callable[[str], bool]
_NO_ARGS: dict[str, Test] = {
    "int": lambda v: _parse_integer(v, 32) is not None,
    "long": lambda v: _parse_integer(v, 64) is not None,
    "bool": lambda v: v.strip().lower() in ("true", "false"),
    "datetime": _is_datetime,
    "decimal": _is_decimal,
    "double": lambda v: _DOUBLE.fullmatch(v) is not None,
    "float": lambda v: _DOUBLE.fullmatch(v) is not None,  # .NET Core 3+ parses overflow as infinity
    "guid": _is_guid,
    "alpha": lambda v: re.match(r"[A-Za-z]*$", v) is not None,
    "required": lambda v: v != "",
    "file": _is_file_name,
    "nonfile": lambda v: not _is_file_name(v),
}
# Arities of the constructors; the single-parameter ones get the whole argument text (no comma split).
_ARITY = {
    "minlength": {1},
    "maxlength": {1},
    "min": {1},
    "max": {1},
    "regex": {1},
    "length": {1, 2},
    "range": {2},
}


@dataclass(frozen=True)
class Constraint:
    """One resolved inline constraint; `when_absent` is its answer when the parameter has no value."""

    text: str
    test: Test
    when_absent: bool = False


def resolve_constraint(text: str) -> Constraint:
    """`int`, `min(1)`, `regex(...)`... as DefaultInlineConstraintResolver does; ValueError says what is wrong."""
    opening = text.find("(")
    has_args = opening >= 0 and text.endswith(")")
    key, args = (text[:opening], text[opening + 1 : -1]) if has_args else (text, None)
    name = key.lower()
    if name in _NO_ARGS:
        if args is not None:
            raise ValueError("it takes no arguments")
        return Constraint(text, _NO_ARGS[name], when_absent=name == "nonfile")
    if name not in _ARITY:
        raise ValueError(f"'{key}' is not a known constraint")
    values = [] if args is None else [args] if _ARITY[name] == {1} else [a.strip() for a in args.split(",")]
    if len(values) not in _ARITY[name]:
        raise ValueError(f"it needs {' or '.join(map(str, sorted(_ARITY[name])))} argument(s)")
    if name == "regex":
        try:
            compiled = re.compile(_dotnet_regex(values[0]), re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return Constraint(text, lambda v: compiled.search(v) is not None)  # IsMatch: not anchored
    bits = 64 if name in ("min", "max", "range") else 32
    numbers = [_integer_argument(value, bits) for value in values]
    test = _range_test(name, numbers) if bits == 64 else _length_test(name, numbers)
    return Constraint(text, test)


def _integer_argument(text: str, bits: int) -> int:
    number = _parse_integer(text, bits)
    if number is None:
        raise ValueError(f"'{text}' is not a valid {bits}-bit integer")
    return number


def _range_test(name: str, args: list[int]) -> Test:
    low, high = {"min": (args[0], None), "max": (None, args[0])}.get(name, (args[0], args[-1]))
    if low is not None and high is not None and low > high:
        raise ValueError("min must be less than or equal to max")

    def test(value: str) -> bool:
        number = _parse_integer(value, 64)
        return number is not None and (low is None or number >= low) and (high is None or number <= high)

    return test


def _length_test(name: str, args: list[int]) -> Test:
    if any(number < 0 for number in args):
        raise ValueError("lengths must be greater than or equal to 0")
    low, high = {"minlength": (args[0], None), "maxlength": (0, args[0])}.get(name, (args[0], args[-1]))
    if high is not None and low > high:
        raise ValueError("the minimum length must be less than or equal to the maximum length")
    return lambda v: low <= _utf16_len(v) and (high is None or _utf16_len(v) <= high)
