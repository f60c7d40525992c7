"""Route templates, constraints and the route table (functions-host.md §4.1-4.3)."""

from __future__ import annotations

import re

import pytest

from funcemu.errors import FuncemuError
from funcemu.http.routes import (
    FunctionRoute,
    RouteTable,
    RouteTemplate,
    RouteTemplateError,
    host_order_key,
    join_route,
)


def match(template: str, path: str) -> dict[str, str] | None:
    return RouteTemplate(template).match(path)


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("api/items", "api/items", {}),
        ("api/items", "API/Items", {}),  # literals are case-insensitive
        ("api/items", "api/items/", {}),  # one trailing slash is ignored
        ("api/items", "api/items//", None),
        ("api/items", "api//items", None),
        ("api/items", "api/item", None),
        ("api/items", "api/items/x", None),
        ("api/items", "api", None),
        ("api/items/{id}", "api/items/5", {"id": "5"}),
        ("api/items/{id}", "api/Items/AbC", {"id": "AbC"}),  # values keep their casing
        ("api/items/{id}", "api/items", None),
        ("api/items/{id}", "api/items/5/6", None),
        ("api/{a}/{b}", "api/x/y", {"a": "x", "b": "y"}),
        ("/api/items", "api/items", {}),  # one leading '/' (or '~/') is trimmed from the template
        ("~/api/items", "api/items", {}),
        ("api/items/", "api/items", {}),  # a trailing '/' in the template is ignored
        ("", "", {}),
        ("", "x", None),
        ("{id}", "", None),
    ],
)
def test_literals_and_parameters(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(template, path) == expected


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("api/items/{id?}", "api/items/5", {"id": "5"}),
        ("api/items/{id?}", "api/items", {}),  # not supplied: absent, not None
        ("api/items/{id?}", "api/items/", {}),
        ("api/{a?}/{b?}", "api", {}),
        ("api/{a?}/{b?}", "api/x", {"a": "x"}),
        ("api/{a?}/end", "api/end", None),  # 'end' is taken as a, then the literal is missing
        ("api/items/{id=7}", "api/items", {"id": "7"}),
        ("api/items/{id=7}", "api/items/9", {"id": "9"}),
        ("api/{a=x}/{b=y}", "api", {"a": "x", "b": "y"}),
        ("api/{id=a:b=c}", "api", {"id": "a:b=c"}),  # everything after the first '=' is the default
        ("api/{id=}", "api", {"id": ""}),
        ("api/{id:int=5}", "api", {"id": "5"}),
        ("api/{id:int=x}", "api", None),  # constraints apply to defaults too
        ("{:x}", "v", {":x": "v"}),  # a name may start with ':'
    ],
)
def test_optional_and_default(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(template, path) == expected


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("api/{*rest}", "api/a", {"rest": "a"}),
        ("api/{*rest}", "api/a/b/c", {"rest": "a/b/c"}),
        ("api/{**rest}", "api/a/b", {"rest": "a/b"}),
        ("api/{*rest}", "api/a/b/", {"rest": "a/b/"}),  # the rest of the path, trailing '/' included
        ("api/{*rest}", "api/a//b", {"rest": "a//b"}),
        ("api/{*rest}", "api", {}),  # empty: matches, value absent
        ("api/{*rest}", "api/", {}),
        ("api/{*rest}", "api//x", None),  # an empty segment before the catch-all never matches
        ("api/{*rest=home}", "api", {"rest": "home"}),
        ("api/{*rest:alpha}", "api", None),  # a constraint fails on the absent value
        ("api/{*rest:nonfile}", "api", {}),  # ... except nonfile, which accepts it
        ("api/{*rest:alpha}", "api/abc", {"rest": "abc"}),
        ("{*all}", "", {}),
        ("{*all}", "x/y", {"all": "x/y"}),
    ],
)
def test_catch_all(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(template, path) == expected


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("files/{name}.{ext}", "files/report.pdf", {"name": "report", "ext": "pdf"}),
        ("files/{name}.{ext}", "files/a.tar.gz", {"name": "a.tar", "ext": "gz"}),  # right-most '.' first
        ("files/{name}.{ext}", "files/report", None),
        ("files/{name}.{ext}", "files/.pdf", None),  # every part of a complex segment needs a value
        ("files/{name}.{ext}", "files/report.", None),
        ("files/{name}.{ext?}", "files/report.pdf", {"name": "report", "ext": "pdf"}),
        ("files/{name}.{ext?}", "files/report", {"name": "report"}),
        ("files/{name}.{ext?}", "files/report.", None),
        ("items/item-{id}", "items/ITEM-42", {"id": "42"}),
        ("items/item-{id}", "items/item-", None),
        ("items/{id}-item", "items/42-item", {"id": "42"}),
        ("items/{id}-item", "items/42-item-x", None),  # a trailing literal must end the segment
        ("{a}-{b}-{c}", "1-2-3-4", {"a": "1-2", "b": "3", "c": "4"}),
        ("{a}to{b}", "atob", {"a": "a", "b": "b"}),
        ("a{x}", "ab", {"x": "b"}),
        ("a{x}", "aab", None),  # ASP.NET quirk: the leading literal is searched right-most, no backtracking
        ("v{major}.{minor}", "V1.2", {"major": "1", "minor": "2"}),
        ("{lang}-{region}/page", "en-us/page", {"lang": "en", "region": "us"}),
    ],
)
def test_complex_segments(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(template, path) == expected


@pytest.mark.parametrize(
    ("constraint", "value", "ok"),
    [
        ("int", "42", True),
        ("int", "-42", True),
        ("int", "+7", True),
        ("int", " 7 ", True),  # NumberStyles.Integer allows surrounding white space
        ("int", "2147483647", True),
        ("int", "2147483648", False),
        ("int", "-2147483648", True),
        ("int", "4.2", False),
        ("int", "abc", False),
        ("int", "١٢", False),  # only ASCII digits
        ("long", "2147483648", True),
        ("long", "9223372036854775807", True),
        ("long", "9223372036854775808", False),
        ("long", "x1", False),
        ("bool", "true", True),
        ("bool", "FALSE", True),
        ("bool", "True ", True),
        ("bool", "yes", False),
        ("bool", "1", False),
        ("datetime", "2024-02-29", True),
        ("datetime", "2023-02-29", False),
        ("datetime", "2024-01-15T10:30:00", True),
        ("datetime", "2024-01-15T10:30:00.1234567Z", True),
        ("datetime", "2024-01-15 10:30+02:00", True),
        ("datetime", "01/15/2024", True),
        ("datetime", "1/15/2024 3:04 PM", True),
        ("datetime", "2024/1/15", True),
        ("datetime", "10:30", True),
        ("datetime", "13:30 PM", False),
        ("datetime", "15/01/2024", False),  # invariant culture is month first
        ("datetime", "2024", False),
        ("datetime", "tomorrow", False),
        ("decimal", "1.5", True),
        ("decimal", "-1,000.25", True),
        ("decimal", "1.5-", True),  # NumberStyles.Number allows a trailing sign
        ("decimal", ".5", True),
        ("decimal", "5.", True),
        ("decimal", "-1.5-", False),
        ("decimal", "1e3", False),
        ("decimal", ",5", False),
        ("decimal", "79228162514264337593543950335", True),
        ("decimal", "79228162514264337593543950336", False),
        ("double", "1.5", True),
        ("double", "-1e10", True),
        ("double", "1,000.5", True),
        ("double", "1e999", True),  # overflow parses as infinity on .NET Core 3+
        ("double", "Infinity", True),
        ("double", "NaN", True),
        ("double", "1.5-", False),
        ("double", "1e", False),
        ("double", "abc", False),
        ("float", "3.25", True),
        ("float", "x", False),
        ("guid", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", True),
        ("guid", "3F2504E04F8911D39A0C0305E82C3301", True),
        ("guid", "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", True),
        ("guid", "(3f2504e0-4f89-11d3-9a0c-0305e82c3301)", True),
        (
            "guid",
            "{0x3f2504e0,0x4f89,0x11d3,{0x9a,0x0c,0x03,0x05,0xe8,0x2c,0x33,0x01}}",
            False,
        ),  # X: not emulated
        ("guid", "3f2504e0-4f89-11d3-9a0c-0305e82c330", False),
        ("guid", "not-a-guid", False),
        ("alpha", "abcXYZ", True),
        ("alpha", "abc1", False),
        ("alpha", "é", False),
        ("minlength(3)", "abc", True),
        ("minlength(3)", "ab", False),
        ("maxlength(3)", "abc", True),
        ("maxlength(3)", "abcd", False),
        ("maxlength(1)", "😀", False),  # lengths count UTF-16 code units, as .NET does
        ("length(2)", "ab", True),
        ("length(2)", "abc", False),
        ("length(2,4)", "abcd", True),
        ("length(2, 4)", "a", False),
        ("min(10)", "10", True),
        ("min(10)", "9", False),
        ("min(10)", "x", False),
        ("max(10)", "10", True),
        ("max(10)", "11", False),
        ("max(-1)", "-2", True),
        ("range(1,5)", "1", True),
        ("range(1,5)", "5", True),
        ("range(1,5)", "6", False),
        ("range(1,5)", "0", False),
        ("regex(^\\d{{3}}$)", "123", True),
        ("regex(^\\d{{3}}$)", "1234", False),
        ("regex([a-z]{{2}})", "123ab456", True),  # IsMatch: not anchored unless the pattern says so
        ("regex(^[a-z]{{2}}$)", "MZ", True),  # case-insensitive
        ("regex(^(get|list)$)", "GET", True),
        ("regex(^(get|list)$)", "post", False),
        ("regex(^a,b$)", "a,b", True),  # commas stay in the pattern
        ("regex(^[a-z]{{2}}:\\d{{1,3}}$)", "ab:123", True),  # so do colons
        ("regex((?<x>a)\\k<x>)", "aa", True),  # .NET named groups and backreferences
        ("regex(^a\\z)", "a\n", False),
        ("regex(^a\\Z)", "a\n", True),
        ("required", "x", True),
        ("file", "report.pdf", True),
        ("file", "report", False),
        ("file", "report.", False),
        ("nonfile", "report", True),
        ("nonfile", "report.pdf", False),
        ("INT", "5", True),  # constraint names are case-insensitive
    ],
)
def test_constraints(constraint: str, value: str, ok: bool) -> None:
    star = "*" if "/" in value else ""  # a value with '/' needs a catch-all to stay in one piece
    assert (match(f"api/{{{star}v:{constraint}}}", f"api/{value}") == {"v": value}) is ok


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("api/{id:int:min(1)}", "api/1", {"id": "1"}),
        ("api/{id:int:min(1)}", "api/0", None),
        ("api/{id:int:min(1)}", "api/x", None),
        ("api/{id:alpha:length(3)}", "api/dog", {"id": "dog"}),
        ("api/{id:alpha:length(3)}", "api/dogs", None),
        ("api/{id:int?}", "api", {}),  # an absent optional value skips its constraints
        ("api/{id:int?}", "api/5", {"id": "5"}),
        ("api/{id:int?}", "api/x", None),
        ("api/{id:required?}", "api", {}),
        ("api/{id::int}", "api/5", {"id": "5"}),  # an empty constraint name is ignored
        ("api/{id:}", "api/x", {"id": "x"}),
        ("api/{id:regex(^(\\d+)x$):min(1)}", "api/5x", None),  # min() then fails on '5x'
        ("api/{id:regex(^(\\d+)x$)=7x}", "api", {"id": "7x"}),
        ("api/{f:int}.{e:alpha}", "api/1.pdf", {"f": "1", "e": "pdf"}),
        ("api/{f:int}.{e:alpha}", "api/x.pdf", None),
    ],
)
def test_chained_and_optional_constraints(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(template, path) == expected


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("api/{id", "a parameter is not closed: every '{' needs a matching '}'"),
        ("api/{a{b}", "a literal '{' or '}' must be escaped as '{{' or '}}'"),
        ("api/a}b", "a literal '{' or '}' must be escaped as '{{' or '}}'"),
        ("api//items", "the separator '/' cannot appear twice in a row"),
        ("//api", "the separator '/' cannot appear twice in a row"),
        ("~api", "a template cannot start with '~' unless followed by '/'"),
        ("api/a?b", "literal 'a?b' cannot contain '?'"),
        ("api/{}", "parameter name '' is invalid (empty, or contains / { } ? *)"),
        ("api/{a/b}", "parameter name 'a/b' is invalid (empty, or contains / { } ? *)"),
        ("api/{a?b}", "parameter name 'a?b' is invalid (empty, or contains / { } ? *)"),
        ("api/{*}", "parameter name '' is invalid (empty, or contains / { } ? *)"),
        ("api/{*rest?}", "catch-all parameter 'rest' cannot be optional"),
        ("api/{id=5?}", "optional parameter 'id' cannot have a default value"),
        ("api/{id}/{ID}", "parameter 'ID' appears more than once"),
        ("api/{*rest}/x", "catch-all parameter 'rest' must be in the last segment"),
        ("api/x{*rest}", "segment 'x{*rest}' mixes a catch-all parameter with other parts"),
        ("api/{a}{b}", "segment '{a}{b}' has two consecutive parameters"),
        ("api/{a?}.{b}", "in segment '{a?}.{b}', optional parameter 'a' must come last"),
        ("api/{a}-{b?}", "in segment '{a}-{b?}', optional parameter 'b' may only follow '.'"),
        ("api/{a}{b?}", "in segment '{a}{b?}', optional parameter 'b' may only follow '.'"),
        ("api/{id:foo}", "constraint 'foo' on parameter 'id': 'foo' is not a known constraint"),
        ("api/{id:foo(1)}", "constraint 'foo(1)' on parameter 'id': 'foo' is not a known constraint"),
        ("api/{id:int(5)}", "constraint 'int(5)' on parameter 'id': it takes no arguments"),
        ("api/{id:min}", "constraint 'min' on parameter 'id': it needs 1 argument(s)"),
        ("api/{id:range(1)}", "constraint 'range(1)' on parameter 'id': it needs 2 argument(s)"),
        (
            "api/{id:length(1,2,3)}",
            "constraint 'length(1,2,3)' on parameter 'id': it needs 1 or 2 argument(s)",
        ),
        ("api/{id:min(x)}", "constraint 'min(x)' on parameter 'id': 'x' is not a valid 64-bit integer"),
        (
            "api/{id:minlength(1,2)}",
            "constraint 'minlength(1,2)' on parameter 'id': '1,2' is not a valid 32-bit integer",
        ),
        (
            "api/{id:range(5,1)}",
            "constraint 'range(5,1)' on parameter 'id': min must be less than or equal to max",
        ),
        (
            "api/{id:minlength(-1)}",
            "constraint 'minlength(-1)' on parameter 'id': lengths must be greater than or equal to 0",
        ),
        (
            "api/{id:length(3,1)}",
            "constraint 'length(3,1)' on parameter 'id': the minimum length must be less than or equal to the maximum length",
        ),
    ],
)
def test_bad_templates(template: str, problem: str) -> None:
    with pytest.raises(RouteTemplateError) as caught:
        RouteTemplate(template)
    assert str(caught.value) == f"route template '{template}': {problem}"
    assert caught.value.template == template
    assert isinstance(caught.value, FuncemuError)


def test_regex_closed_early_by_paren_colon() -> None:
    # ')' followed by ':' ends a constraint even inside regex(...), exactly as ASP.NET's parser does
    template = "api/{id:regex(^(\\d+):(\\w+)$)}"
    prefix = f"route template '{template}': constraint 'regex(^(\\d+)' on parameter 'id': not a valid regular"
    with pytest.raises(RouteTemplateError, match=re.escape(prefix)):
        RouteTemplate(template)


def test_escaped_braces_are_literal() -> None:
    assert match("api/{{x}}/{id:regex(^\\d{{2}}$)}", "api/{x}/42") == {"id": "42"}


@pytest.mark.parametrize(
    ("prefix", "route", "expected"),
    [
        ("api", "items/{id}", "api/items/{id}"),
        ("api", "/items", "api/items"),
        ("api", "/{*route}", "api/{*route}"),  # AsgiFunctionApp's route would otherwise give 'api//...'
        ("/api/", "items", "api/items"),
        ("", "items", "items"),
        ("", "/{*route}", "{*route}"),
        ("api", "", "api"),
        ("v1/api", "x", "v1/api/x"),
    ],
)
def test_join_route(prefix: str, route: str, expected: str) -> None:
    assert join_route(prefix, route) == expected


def test_function_route_methods() -> None:
    route = FunctionRoute("get_item", "api/items/{id}", ["get", "Post"])
    assert route.methods == frozenset({"GET", "POST"})
    assert route.match("get", "api/items/1") == {"id": "1"}
    assert route.match("POST", "api/items/1") == {"id": "1"}
    assert route.match("DELETE", "api/items/1") is None
    assert route.match("GET", "api/other") is None
    assert FunctionRoute("any", "x").match("PATCH", "x") == {}
    assert FunctionRoute("empty", "x", []).methods is None


def test_table_first_match_wins_in_name_order() -> None:
    table = RouteTable(
        [
            FunctionRoute("b_special", "api/items/special"),
            FunctionRoute("a_item", "api/items/{id}"),
        ]
    )
    assert [r.name for r in table.routes] == ["a_item", "b_special"]
    found = table.resolve("GET", "api/items/special")
    assert found is not None
    assert (found[0].name, found[1]) == ("a_item", {"id": "special"})  # no "most specific wins"


def test_table_method_mismatch_continues_then_404() -> None:
    table = RouteTable(
        [
            FunctionRoute("a_create", "api/items/{id}", ["POST"]),
            FunctionRoute("b_read", "api/items/{id:int}", ["GET"]),
        ]
    )
    found = table.resolve("GET", "api/items/5")
    assert found is not None and found[0].name == "b_read"
    assert table.resolve("GET", "api/items/x") is None  # nothing matches: the caller answers 404
    assert table.resolve("PUT", "api/items/5") is None  # never 405


def test_host_order_is_ordinal_ignore_case() -> None:
    names = ["a_b", "ab", "Zeta", "alpha", "B"]
    assert sorted(names, key=host_order_key) == ["ab", "alpha", "a_b", "B", "Zeta"]
    table = RouteTable([FunctionRoute(n, f"{n}/x") for n in names])
    assert [r.name for r in table.routes] == ["ab", "alpha", "a_b", "B", "Zeta"]


def test_template_is_kept_raw() -> None:
    template = RouteTemplate("/api/Items/{id:int?}")
    assert template.template == "/api/Items/{id:int?}"
    assert repr(template) == "RouteTemplate('/api/Items/{id:int?}')"
