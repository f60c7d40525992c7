"""Function routes: ASP.NET Core route templates matched the way the Functions host does (functions-host.md §4.1-4.3).

`RouteTemplate("api/items/{id:int?}")` parses once, resolves every inline constraint, and then
`.match("api/items/5") == {"id": "5"}`. Matching follows ASP.NET's `RoutePatternMatcher` segment by segment
(complex segments right to left, without backtracking), so it cannot be one regular expression.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from funcemu.errors import FuncemuError

__all__ = [
    "FunctionRoute",
    "RouteTable",
    "RouteTemplate",
    "RouteTemplateError",
    "host_order_key",
    "join_route",
]


class RouteTemplateError(FuncemuError):
    def __init__(self, template: str, problem: str) -> None:
        super().__init__(f"route template '{template}': {problem}")
        self.template = template
        self.problem = problem


# ---------------------------------------------------------------- constraints (ASP.NET, invariant culture)

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


# ---------------------------------------------------------------- template parsing (RoutePatternParser rules)


@dataclass(frozen=True)
class _Literal:
    text: str
    separator: bool = False  # the '.' before an optional parameter in a complex segment
    folded: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "folded", _fold(self.text))


@dataclass(frozen=True)
class _Param:
    name: str
    optional: bool
    catch_all: bool
    default: str | None
    constraints: tuple[Constraint, ...]


_Part = _Literal | _Param


def _fold(text: str) -> str:
    """OrdinalIgnoreCase, keeping every index: upper-case each character that stays one character."""
    return "".join(up if len(up := c.upper()) == 1 else c for c in text)


def _parse_template(template: str) -> list[list[_Part]]:
    text = (
        template[2:] if template.startswith("~/") else template[1:] if template.startswith("/") else template
    )
    if text.startswith("~"):
        raise RouteTemplateError(template, "a template cannot start with '~' unless followed by '/'")
    segments: list[list[_Part]] = []
    index = 0
    while index < len(text):
        if text[index] == "/":
            raise RouteTemplateError(template, "the separator '/' cannot appear twice in a row")
        start = index
        parts, index = _parse_segment(template, text, index)
        _check_segment(template, text[start:index], parts)
        segments.append(parts)
        index += 1
    _check_template(template, segments)
    return segments


def _parse_segment(template: str, text: str, index: int) -> tuple[list[_Part], int]:
    parts: list[_Part] = []
    literal = ""
    while index < len(text) and text[index] != "/":
        char = text[index]
        if char in "{}" and text.startswith(char * 2, index):
            literal, index = literal + char, index + 2
        elif char == "{":
            _add_literal(template, parts, literal)
            literal = ""
            raw, index = _read_parameter(template, text, index + 1)
            parts.append(_parse_parameter(template, raw))
        elif char == "}":
            raise RouteTemplateError(template, "a literal '{' or '}' must be escaped as '{{' or '}}'")
        else:
            literal, index = literal + char, index + 1
    _add_literal(template, parts, literal)
    return parts, index


def _add_literal(template: str, parts: list[_Part], literal: str) -> None:
    if "?" in literal:
        raise RouteTemplateError(template, f"literal '{literal}' cannot contain '?'")
    if literal:
        parts.append(_Literal(literal))


def _read_parameter(template: str, text: str, index: int) -> tuple[str, int]:
    """The text up to the closing '}' ('/' included); '{{' and '}}' inside stand for braces."""
    raw = ""
    while index < len(text):
        char = text[index]
        if char in "{}" and text.startswith(char * 2, index):
            raw, index = raw + char, index + 2
        elif char == "{":
            raise RouteTemplateError(template, "a literal '{' or '}' must be escaped as '{{' or '}}'")
        elif char == "}":
            return raw, index + 1
        else:
            raw, index = raw + char, index + 1
    raise RouteTemplateError(template, "a parameter is not closed: every '{' needs a matching '}'")


def _parse_parameter(template: str, raw: str) -> _Param:
    """`[*|**]name[:constraint...][=default][?]`, split the way ASP.NET's RouteParameterParser does."""
    start = 2 if raw.startswith("**") else 1 if raw.startswith("*") else 0
    end = len(raw) - 1
    optional = end >= 0 and raw[end] == "?"
    end -= optional
    index, name = start, raw[start : end + 1]
    while index <= end:
        if raw[index] in ":=" and index != start:  # a name may itself start with ':' or '='
            name, index = raw[start:index], index - 1
            break
        index += 1
    texts, index = _split_constraints(raw, index, end)
    default = raw[index + 1 : end + 1] if index <= end and raw[index] == "=" else None
    if not name or any(c in name for c in "/{}?*"):
        raise RouteTemplateError(
            template, f"parameter name '{name}' is invalid (empty, or contains / {{ }} ? *)"
        )
    if start and optional:
        raise RouteTemplateError(template, f"catch-all parameter '{name}' cannot be optional")
    if optional and default is not None:
        raise RouteTemplateError(template, f"optional parameter '{name}' cannot have a default value")
    return _Param(name, optional, bool(start), default, _constraints(template, name, texts))


def _constraints(template: str, name: str, texts: list[str]) -> tuple[Constraint, ...]:
    resolved = []
    for text in texts:
        try:
            resolved.append(resolve_constraint(text))
        except ValueError as exc:
            raise RouteTemplateError(template, f"constraint '{text}' on parameter '{name}': {exc}") from None
    return tuple(resolved)


def _split_constraints(raw: str, index: int, end: int) -> tuple[list[str], int]:
    """Cut `:int:regex(a:b)=x` into constraint texts; return them and the index of '=' (or past the end).

    Inside parentheses, ')' closes the constraint only before ':', '=' or the end, and ':'/'=' end it only
    when no ')' follows anywhere: ASP.NET's rules, so `regex(...)` may hold ':', ',' and balanced parens.
    """
    found: list[str] = []
    state, start = "start", index
    while True:
        char = raw[index] if index <= end else None
        if state == "paren" and char in (")", ":", "="):
            after = raw[index + 1] if index + 1 <= end else None
            if char == ")" and after in (None, ":", "="):
                found.append(raw[start : index + 1])
                state, start = ("start", index + 1) if after == ":" else ("end", start)
            elif char != ")" and raw.find(")", index + 1) == -1:
                found.append(raw[start:index])
                state, start, index = ("name", index + 1, index) if char == ":" else ("end", start, index - 1)
            elif char != ")":
                index = raw.find(")", index + 1) - 1
        elif state == "paren" and char is None:
            found.append(raw[start:index])
            state = "end"
        elif state != "paren" and char in (None, ":", "="):
            if state == "name" and raw[start:index]:
                found.append(raw[start:index])
            state, start = ("name", index + 1) if char == ":" else ("end", start)
            index -= char == "="
        elif char == "(":
            state = "paren"
        index += 1
        if state == "end":
            return found, index


def _check_segment(template: str, text: str, parts: list[_Part]) -> None:
    """ASP.NET's segment rules, in its order; the '.' before a trailing optional parameter becomes a separator."""
    params = [(i, p) for i, p in enumerate(parts) if isinstance(p, _Param)]
    if len(parts) > 1 and any(p.catch_all for _, p in params):
        raise RouteTemplateError(template, f"segment '{text}' mixes a catch-all parameter with other parts")
    for index, param in params:
        if param.optional and len(parts) > 1:
            _check_trailing_optional(template, text, parts, index, param.name)
    if any(b - a == 1 for (a, _), (b, _) in zip(params, params[1:], strict=False)):
        raise RouteTemplateError(template, f"segment '{text}' has two consecutive parameters")


def _check_trailing_optional(template: str, text: str, parts: list[_Part], index: int, name: str) -> None:
    if index < len(parts) - 1:
        raise RouteTemplateError(template, f"in segment '{text}', optional parameter '{name}' must come last")
    before = parts[index - 1]
    if not isinstance(before, _Literal) or before.text != ".":
        raise RouteTemplateError(
            template, f"in segment '{text}', optional parameter '{name}' may only follow '.'"
        )
    parts[index - 1] = _Literal(".", separator=True)


def _check_template(template: str, segments: list[list[_Part]]) -> None:
    seen: set[str] = set()
    for number, parts in enumerate(segments):
        for part in parts:
            if not isinstance(part, _Param):
                continue
            if part.name.upper() in seen:
                raise RouteTemplateError(template, f"parameter '{part.name}' appears more than once")
            seen.add(part.name.upper())
            if part.catch_all and number != len(segments) - 1:
                raise RouteTemplateError(
                    template, f"catch-all parameter '{part.name}' must be in the last segment"
                )


# ---------------------------------------------------------------- matching (RoutePatternMatcher rules)


def _tokenize(path: str) -> list[tuple[int, str]]:
    """(offset, text) per segment; one trailing '/' yields no segment, as in ASP.NET's PathTokenizer."""
    tokens, index = [], 0
    while index < len(path):
        slash = path.find("/", index)
        stop = len(path) if slash < 0 else slash
        tokens.append((index, path[index:stop]))
        index = stop + 1
    return tokens


def _match_complex(parts: Sequence[_Part], text: str, values: dict[str, str | None]) -> bool:
    last = len(parts) - 1
    tail = parts[last]
    if isinstance(tail, _Param) and tail.optional and getattr(parts[last - 1], "separator", False):
        if _match_complex_from(parts, text, values, last):
            return True
        return not _fold(text).endswith(".") and _match_complex_from(parts, text, values, last - 2)
    return _match_complex_from(parts, text, values, last)


def _match_complex_from(parts: Sequence[_Part], text: str, values: dict[str, str | None], top: int) -> bool:
    """Walk right to left; each literal takes its right-most place that leaves a pending parameter one char."""
    folded, edge, pending, found = _fold(text), len(text), None, {}
    for index in range(top, -1, -1):
        part = parts[index]
        if isinstance(part, _Param):
            pending = part
            continue
        limit = edge - (pending is not None)
        at = folded.rfind(part.folded, 0, limit) if limit > 0 else -1
        if at < 0 or (index == len(parts) - 1 and at + len(part.text) != len(text)):
            return False
        if pending is not None:
            found[pending.name], pending = text[at + len(part.text) : edge], None
        edge = at
    if pending is not None:
        if edge == 0:
            return False
        found[pending.name] = text[:edge]
    if edge != 0 and not isinstance(parts[0], _Param):
        return False
    values.update(found)
    return True


class RouteTemplate:
    """A parsed route template; construction raises RouteTemplateError for anything ASP.NET would reject."""

    def __init__(self, template: str) -> None:
        self.template = template
        self._segments = _parse_template(template)
        self._params = [p for parts in self._segments for p in parts if isinstance(p, _Param)]

    def __repr__(self) -> str:
        return f"RouteTemplate({self.template!r})"

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for `path` (decoded, without the leading '/'), or None."""
        values = self._capture(path)
        if values is None or not all(self._satisfies(p, values.get(p.name)) for p in self._params):
            return None
        return {name: value for name, value in values.items() if value is not None}

    def _capture(self, path: str) -> dict[str, str | None] | None:
        tokens = _tokenize(path)
        values: dict[str, str | None] = {}
        for number, parts in enumerate(self._segments):
            head = parts[0]
            if number >= len(tokens):
                if len(parts) > 1 or not isinstance(head, _Param):
                    return None
                if not (head.optional or head.catch_all or head.default is not None):
                    return None
                values[head.name] = head.default
                continue
            offset, text = tokens[number]
            if text == "":
                return None
            if isinstance(head, _Param) and head.catch_all:
                values[head.name] = path[offset:]  # to the very end, trailing '/' included
                return self._with_defaults(values)
            if not self._match_segment(parts, text, values):
                return None
        return self._with_defaults(values) if len(tokens) <= len(self._segments) else None

    @staticmethod
    def _match_segment(parts: list[_Part], text: str, values: dict[str, str | None]) -> bool:
        if len(parts) > 1:
            return _match_complex(parts, text, values)
        part = parts[0]
        if isinstance(part, _Literal):
            return _fold(text) == part.folded
        values[part.name] = text
        return True

    def _with_defaults(self, values: dict[str, str | None]) -> dict[str, str | None]:
        for param in self._params:
            if param.name not in values and param.default is not None:
                values[param.name] = param.default
        return values

    @staticmethod
    def _satisfies(param: _Param, value: str | None) -> bool:
        if value is None:
            return param.optional or all(c.when_absent for c in param.constraints)
        return all(c.test(value) for c in param.constraints)


# ---------------------------------------------------------------- function routes and the table


def join_route(prefix: str, route: str) -> str:
    """The full template: `routePrefix/route`, or `route` alone when the prefix is empty (§4.1-4.2)."""
    prefix, route = prefix.strip("/"), route.lstrip("/")
    if not prefix:
        return route
    return f"{prefix}/{route}" if route else prefix


def host_order_key(function_name: str) -> str:
    """The host's function order, OrdinalIgnoreCase: compares upper-cased names ('ab' sorts before 'a_b')."""
    return function_name.upper()


class FunctionRoute:
    """One HTTP-triggered function: its template and allowed methods (None = every method)."""

    def __init__(
        self, name: str, template: RouteTemplate | str, methods: Iterable[str] | None = None
    ) -> None:
        self.name = name
        self.template = template if isinstance(template, RouteTemplate) else RouteTemplate(template)
        allowed = frozenset(m.upper() for m in methods) if methods is not None else frozenset()
        self.methods: frozenset[str] | None = (
            allowed or None
        )  # empty counts as "all", as in the host's conflict check

    def __repr__(self) -> str:
        return (
            f"FunctionRoute({self.name!r}, {self.template.template!r}, {sorted(self.methods or []) or None})"
        )

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods

    def match(self, method: str, path: str) -> dict[str, str] | None:
        return self.template.match(path) if self.allows(method) else None


class RouteTable:
    """Function routes in host order; the first route that matches path and method wins (no 405, §4.3)."""

    def __init__(self, routes: Iterable[FunctionRoute]) -> None:
        self.routes = tuple(sorted(routes, key=lambda route: host_order_key(route.name)))

    def resolve(self, method: str, path: str) -> tuple[FunctionRoute, dict[str, str]] | None:
        for route in self.routes:
            values = route.match(method, path)
            if values is not None:
                return route, values
        return None
