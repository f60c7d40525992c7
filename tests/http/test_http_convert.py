"""Request and response conversion (functions-host.md §3.7-3.8)."""

from __future__ import annotations

import http

import azure.functions as func
import pytest

from funcemu.http.convert import HttpResult, build_http_request, render_http_response, render_response_object

TEXT = ("Content-Type", "text/plain; charset=utf-8")


def request(**overrides: object) -> func.HttpRequest:
    args: dict[str, object] = {
        "method": "get",
        "url": "http://localhost:7071/api/items/5?a=1",
        "headers": [],
        "query": [],
        "route_params": {},
        "body": b"",
    }
    args.update(overrides)
    return build_http_request(**args)  # type: ignore[arg-type]


# ---------------------------------------------------------------- requests


def test_request_basics() -> None:
    req = request(route_params={"id": "5"}, body=b'{"x": 1}')
    assert req.method == "GET"
    assert req.url == "http://localhost:7071/api/items/5?a=1"
    assert dict(req.route_params) == {"id": "5"}
    assert req.get_body() == b'{"x": 1}'
    assert req.get_json() == {"x": 1}
    assert request().get_body() == b""


def test_request_headers_lower_cased_and_joined() -> None:
    req = request(headers=[("Accept", "a"), ("X-Empty", ""), ("accept", "b"), ("ACCEPT", "c"), ("Host", "h")])
    assert dict(req.headers) == {"accept": "a,b,c", "x-empty": "", "host": "h"}
    assert req.headers["Accept"] == "a,b,c"  # the library's mapping is case-insensitive


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ([("a", "1")], {"a": "1"}),
        ([("a", "1"), ("a", "2")], {"a": "1,2"}),
        ([("a", "")], {}),  # an empty value drops the key
        ([("a", ""), ("b", "x")], {"b": "x"}),
        ([("a", ""), ("a", "")], {"a": ","}),  # joined first, so two empties survive as ','
        ([("a", ""), ("a", "1")], {"a": ",1"}),
        ([("Name", "x"), ("name", "y")], {"Name": "x,y"}),  # keys are case-insensitive, first spelling kept
    ],
)
def test_request_query(query: list[tuple[str, str]], expected: dict[str, str]) -> None:
    assert dict(request(query=query).params) == expected


# ---------------------------------------------------------------- func.HttpResponse


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (func.HttpResponse(), HttpResult(200, [TEXT], b"")),
        (func.HttpResponse("héllo"), HttpResult(200, [TEXT], "héllo".encode())),
        (func.HttpResponse(b"\x00\x01", status_code=201), HttpResult(201, [TEXT], b"\x00\x01")),
        (func.HttpResponse(status_code=http.HTTPStatus.ACCEPTED), HttpResult(202, [TEXT], b"")),
        (
            func.HttpResponse("{}", mimetype="application/json"),
            HttpResult(200, [("Content-Type", "application/json")], b"{}"),
        ),
        (
            func.HttpResponse("é", mimetype="text/html", charset="latin-1"),
            HttpResult(200, [("Content-Type", "text/html; charset=latin-1")], b"\xe9"),
        ),
        (
            func.HttpResponse("x", headers={"content-type": "image/png", "X-Trace": "1"}),
            HttpResult(200, [("Content-Type", "image/png"), ("X-Trace", "1")], b"x"),
        ),
    ],
)
def test_function_response(response: func.HttpResponse, expected: HttpResult) -> None:
    assert render_http_response(response) == expected


def test_function_response_duplicate_headers() -> None:
    response = func.HttpResponse(headers={"X-One": "a"})
    response.headers.add("X-One", "b")  # same spelling: the worker's dict keeps the last value
    response.headers.add("x-two", "c")
    response.headers.add("X-TWO", "d")  # other spelling: the host keeps the first and drops this one
    assert render_http_response(response).headers == [TEXT, ("X-One", "b"), ("x-two", "c")]


def test_function_response_is_not_modified() -> None:
    response = func.HttpResponse(headers={"Set-Cookie": "a=1"})
    render_http_response(response)
    assert list(response.headers.items()) == [("Set-Cookie", "a=1")]


def test_unparsable_status_code_means_200() -> None:
    assert render_http_response(func.HttpResponse(status_code="oops")).status == 200  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        (["session=abc"], ["session=abc; domain=; path="]),
        (["a=1; Path=/; Domain=example.com"], ["a=1; domain=example.com; path=/"]),
        (
            ["id=x; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600"],
            ["id=x; max-age=3600; domain=; path=/; secure; samesite=lax; httponly"],
        ),
        (["a=1; SameSite=Strict"], ["a=1; domain=; path=; samesite=strict"]),
        (["a=1; SameSite=None; Secure"], ["a=1; domain=; path=; secure; samesite=none"]),
        (["a=1; SameSite=Bogus"], ["a=1; domain=; path="]),
        (["a=1; Max-Age=30.9"], ["a=1; max-age=30; domain=; path="]),
        (
            ["old=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"],
            ["old=; expires=Thu, 01 Jan 1970 00:00:00 GMT; domain=; path="],
        ),
        (
            ["a=1; Expires=Thu, 12-Jan-2017 13:55:08 GMT"],
            ["a=1; expires=Thu, 12 Jan 2017 13:55:08 GMT; domain=; path="],
        ),
        (['msg="hello world"'], ["msg=hello%20world; domain=; path="]),  # ASP.NET escapes values
        (["a=1", "b=2; Path=/b"], ["a=1; domain=; path=", "b=2; domain=; path=/b"]),
        (["a=1; b=2"], ["a=1; domain=; path=", "b=2; domain=; path="]),  # SimpleCookie splits these
        (["not a cookie"], []),  # SimpleCookie drops what it cannot parse
    ],
)
def test_cookies(cookies: list[str], expected: list[str]) -> None:
    response = func.HttpResponse("ok")
    for cookie in cookies:
        response.headers.add("Set-Cookie", cookie)
    result = render_http_response(response)
    assert result.headers == [TEXT] + [("Set-Cookie", cookie) for cookie in expected]


def test_bad_cookie_max_age_fails_the_invocation() -> None:
    with pytest.raises(ValueError):
        render_http_response(func.HttpResponse(headers={"Set-Cookie": "a=1; Max-Age=soon"}))


# ---------------------------------------------------------------- str results: the host's JSON sniffing


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("hello", "hello"),
        ("", ""),
        ("   ", ""),  # JSON with no token is null: empty body
        ("{not json", "{not json"),
        ("[1, 2", "[1, 2"),
        ("12 monkeys", "12 monkeys"),
        ("<p>hi</p>", "<p>hi</p>"),
        ("true", "True"),
        ("false", "False"),
        ("null", ""),
        ("42", "42"),
        ("-0", "0"),
        ("12345678901234567890", "12345678901234567890"),
        ("1.0", "1"),  # double.ToString(): no forced decimal place
        ("1.5", "1.5"),
        ("-0.0", "-0"),
        ("1e20", "1E+20"),
        ("1e15", "1E+15"),
        ("1e14", "100000000000000"),
        ("0.0001", "0.0001"),
        ("0.00001", "1E-05"),
        ('"quoted"', "quoted"),
        ('" spaced "', " spaced "),
        ("{}", "{}"),
        ("[]", "[]"),
        ('{"a": 1}', '{\n  "a": 1\n}'),
        ('{"a":1,"b":"x"}', '{\n  "a": 1,\n  "b": "x"\n}'),
        ("[1, 2]", "[\n  1,\n  2\n]"),
        (
            '{"a": [1, {"b": null}], "c": {}}',
            '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ],\n  "c": {}\n}',
        ),
        ('{"f": 1.0, "g": 1e20, "h": 0.5}', '{\n  "f": 1.0,\n  "g": 1E+20,\n  "h": 0.5\n}'),
        ('{"t": true, "s": "é\\n\\u0001\\u2028"}', '{\n  "t": true,\n  "s": "é\\n\\u0001\\u2028"\n}'),
        ('{"status": 201}', '{\n  "status": 201\n}'),  # no body key: not a response object
    ],
)
def test_string_results(text: str, body: str) -> None:
    assert render_http_response(text) == HttpResult(200, [TEXT], body.encode())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"body": "hi"}', HttpResult(200, [TEXT], b"hi")),
        ('{"Body": "hi", "StatusCode": 201}', HttpResult(201, [TEXT], b"hi")),
        ('{"body": "hi", "status": "404"}', HttpResult(404, [TEXT], b"hi")),
        ('{"body": "hi", "status": " +202 "}', HttpResult(202, [TEXT], b"hi")),
        ('{"body": "hi", "statusCode": 201, "status": 500}', HttpResult(201, [TEXT], b"hi")),
        ('{"body": "hi", "statusCode": null, "status": 500}', HttpResult(200, [TEXT], b"hi")),
        ('{"body": "hi", "status": 201.0}', HttpResult(200, [TEXT], b"hi")),  # doubles are not status codes
        ('{"body": "hi", "status": "abc"}', HttpResult(200, [TEXT], b"hi")),
        ('{"body": "hi", "status": true}', HttpResult(200, [TEXT], b"hi")),
        ('{"body": null}', HttpResult(200, [TEXT], b"")),
        ('{"body": {"a": [1, 2.0]}}', HttpResult(200, [TEXT], b'{"a":[1,2.0]}')),  # compact JSON
        ('{"body": [1]}', HttpResult(200, [TEXT], b"System.Collections.Generic.List`1[System.Object]")),
        ('{"body": 5}', HttpResult(200, [TEXT], b"5")),
        ('{"body": 2.50}', HttpResult(200, [TEXT], b"2.5")),
        ('{"body": false}', HttpResult(200, [TEXT], b"False")),
        (
            '{"body": {"a": 1}, "headers": {"Content-Type": "application/json"}}',
            HttpResult(200, [("Content-Type", "application/json; charset=utf-8")], b'{"a":1}'),
        ),
        (
            '{"body": "<b>", "headers": {"content-type": "text/html; charset=ISO-8859-1"}}',
            HttpResult(200, [("Content-Type", "text/html; charset=utf-8")], b"<b>"),
        ),
        (
            '{"body": "é", "headers": {"Content-Type": "text/plain; charset=utf-16"}}',
            HttpResult(200, [("Content-Type", "text/plain; charset=utf-16")], "é".encode("utf-16-le")),
        ),
        (
            '{"body": "", "headers": {"X-A": "1", "x-a": "2", "X-N": 5, "X-B": true, "X-O": {}}}',
            HttpResult(
                200,
                [TEXT, ("X-A", "1"), ("X-N", "5"), ("X-B", "True"), ("X-O", "System.Dynamic.ExpandoObject")],
                b"",
            ),
        ),
        ('{"body": "x", "headers": "nope"}', HttpResult(200, [TEXT], b"x")),
        ('{"body": "x", "cookies": [{"name": "a", "value": "1"}]}', HttpResult(200, [TEXT], b"x")),
    ],
)
def test_response_objects(text: str, expected: HttpResult) -> None:
    assert render_http_response(text) == expected


@pytest.mark.parametrize(
    "obj",
    [
        {"body": "x", "headers": {"Content-Type": None}},
        {"body": "x", "headers": {"X-A": None}},
        {"body": "x", "status": 2**40},  # Convert.ToInt32 overflows in the host
    ],
)
def test_response_objects_the_host_fails_on(obj: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        render_response_object(obj)


def test_render_response_object_directly() -> None:
    result = render_response_object({"BODY": {"ok": True}, "statusCode": 202})
    assert result == HttpResult(202, [TEXT], b'{"ok":true}')


def test_lone_surrogate_becomes_replacement_character() -> None:
    assert render_http_response('"\\ud800"').body == "\ufffd".encode()


# ---------------------------------------------------------------- values the converter refuses


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(None, "NoneType"), ({"body": "x"}, "dict"), (5, "int"), (b"x", "bytes"), ([], "list")],
)
def test_unsupported_values(value: object, type_name: str) -> None:
    with pytest.raises(TypeError) as caught:
        render_http_response(value)
    assert str(caught.value) == (
        "unable to encode outgoing TypedData: unsupported type "
        "\"<class 'azure.functions.http.HttpResponseConverter'>\" "
        f'for Python type "{type_name}"'
    )
