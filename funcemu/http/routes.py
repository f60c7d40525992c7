"""Function routes: ASP.NET Core route templates matched the way the Functions host does (functions-host.md §4.1-4.3).

`RouteTemplate("api/items/{id:int?}")` parses once, resolves every inline constraint, and then
`.match("api/items/5") == {"id": "5"}`. Matching follows ASP.NET's `RoutePatternMatcher` segment by segment
(complex segments right to left, without backtracking), so it cannot be one regular expression.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from funcemu.errors import FuncemuError
from funcemu.http.constraints import Constraint, resolve_constraint

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
