"""HTTP triggers over real HTTP: route templates, methods, request and response conversion (docs §3.7-3.8, §4).

One host of tests/host/apps/http_app serves the whole module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from host_support import APPS, raw_request
from support import HostProcess

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    with HostProcess(APPS / "http_app") as running:
        yield running


@pytest.mark.parametrize("path, value", [
    ("c/int/-42", "-42"), ("c/int/2147483648", None), ("c/int/x", None),
    ("c/long/2147483648", "2147483648"), ("c/long/9223372036854775808", None),
    ("c/bool/TRUE", "TRUE"), ("c/bool/yes", None),
    ("c/datetime/2024-02-29", "2024-02-29"), ("c/datetime/2023-02-29", None),
    ("c/decimal/1.5", "1.5"), ("c/decimal/1e3", None),
    ("c/double/1e3", "1e3"), ("c/float/-0.5", "-0.5"), ("c/double/abc", None),
    ("c/guid/" + GUID, GUID), ("c/guid/not-a-guid", None),
    ("c/alpha/abcXYZ", "abcXYZ"), ("c/alpha/abc1", None),
    ("c/minlength/abc", "abc"), ("c/minlength/ab", None),
    ("c/maxlength/abc", "abc"), ("c/maxlength/abcd", None),
    ("c/length/abc", "abc"), ("c/length/ab", None),
    ("c/lengthrange/ab", "ab"), ("c/lengthrange/abcde", None),
    ("c/min/10", "10"), ("c/min/9", None),
    ("c/max/10", "10"), ("c/max/11", None),
    ("c/range/5", "5"), ("c/range/6", None),
    ("c/regex/ab12", "ab12"), ("c/regex/abc12", None),
    ("c/required/x", "x"),
    ("c/chained/1", "1"), ("c/chained/0", None), ("c/chained/one", None),
])
def test_inline_constraints(host: HostProcess, path: str, value: str | None) -> None:
    reply = host.call("GET", "/api/" + path)
    if value is None:
        assert (reply.status, reply.body) == (404, b"")
    else:
        assert (reply.status, reply.json()) == (200, {"v": value})


@pytest.mark.parametrize("path, values", [
    ("opt", {}), ("opt/x", {"v": "x"}),
    ("opttyped", {}), ("opttyped/7", {"v": "7"}), ("opttyped/x", None),
    ("def", {"v": "fallback"}), ("def/given", {"v": "given"}),
    ("files", {}), ("files/a/b/c.txt", {"path": "a/b/c.txt"}), ("files2/x/y", {"path": "x/y"}),
    ("complex/report.pdf", {"name": "report", "ext": "pdf"}), ("complex/report", {"name": "report"}),
    ("mIxEd/cAsE", {}), ("opt/x/y", None),
])
def test_optional_default_catch_all_and_complex_segments(host: HostProcess, path: str,
                                                         values: dict[str, str] | None) -> None:
    reply = host.call("GET", "/api/" + path)
    if values is None:
        assert reply.status == 404
    else:
        assert (reply.status, reply.json()) == (200, values)


def test_default_route_is_the_function_name(host: HostProcess) -> None:
    assert host.call("GET", "/api/noroute").text == "default route is the function name"


def test_first_match_wins_in_function_name_order(host: HostProcess) -> None:
    assert host.call("GET", "/api/order/special").text == "a_first"


def test_methods_select_among_routes_and_a_mismatch_is_404_never_405(host: HostProcess) -> None:
    assert host.call("GET", "/api/m/shared").text == "m_get"
    assert host.call("DELETE", "/api/m/shared").text == "m_put"
    assert (host.call("POST", "/api/m/shared").status, host.call("GET", "/api/m/post").status) == (404, 404)
    assert host.call("POST", "/api/m/post").text == "m_post"


def test_unknown_paths_are_404_with_an_empty_body(host: HostProcess) -> None:
    for path in ("/api/nothing", "/api", "/nothing", "/api/c/int"):
        reply = host.call("GET", path)
        assert (reply.status, reply.body) == (404, b""), path


def test_request_conversion(host: HostProcess) -> None:
    reply = raw_request(host.url, "POST", "/api/echo/a/b?x=1&x=2&empty=&flag",
                        headers=[("X-Multi", "one"), ("X-Multi", "two"), ("X-Empty", ""),
                                 ("Content-Type", "application/octet-stream")],
                        body=b"\x00\xffbytes")
    seen = reply.json()
    assert seen["method"] == "POST"
    assert seen["url"] == host.url + "/api/echo/a/b?x=1&x=2&empty=&flag"
    assert seen["route_params"] == {"rest": "a/b"}
    assert seen["params"] == {"x": "1,2"}
    assert seen["headers"]["x-multi"] == "one,two" and seen["headers"]["x-empty"] == ""
    assert all(name == name.lower() for name in seen["headers"])
    assert (seen["body_type"], bytes.fromhex(seen["body"])) == ("bytes", b"\x00\xffbytes")


def test_request_url_has_the_decoded_path_and_the_raw_query(host: HostProcess) -> None:
    """§3.7: url = scheme://Host + Request.Path (decoded; Kestrel keeps %2F) + the query string as received."""
    seen = raw_request(host.url, "GET", "/api/%65cho/a%2Fb%20c?q=%41&r=%2F").json()
    assert seen["url"] == host.url + "/api/echo/a%2Fb c?q=%41&r=%2F"


def test_a_chunked_body_arrives_empty_as_in_func_start(host: HostProcess) -> None:
    seen = raw_request(host.url, "PUT", "/api/echo/chunked", body=b"data", chunked=True).json()
    assert (seen["method"], seen["body"]) == ("PUT", "")


@pytest.mark.parametrize("path, status, content_type, body", [
    ("r/text", 200, "text/plain; charset=utf-8", "h\u00e9llo".encode()),
    ("r/json", 200, "application/json", b'{"a": 1}'),
    ("r/charset", 200, "text/html; charset=latin-1", "caf\u00e9".encode("latin-1")),
    ("r/bytes", 200, "application/octet-stream", b"\x00\x01\xff"),
    ("r/status", 201, "text/plain; charset=utf-8", b"created"),
    ("r/str", 200, "text/plain; charset=utf-8", b"plain string"),
    ("r/strjson", 200, "text/plain; charset=utf-8", b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": true\n}'),
    ("r/strbody", 202, "text/plain; charset=utf-8", b"from body"),
    ("r/strtrue", 200, "text/plain; charset=utf-8", b"True"),
])
def test_response_conversion(host: HostProcess, path: str, status: int, content_type: str, body: bytes) -> None:
    reply = host.call("GET", "/api/" + path)
    assert (reply.status, reply.headers["content-type"], reply.body) == (status, content_type, body)


def test_response_headers_and_cookies(host: HostProcess) -> None:
    status = host.call("GET", "/api/r/status")
    assert (status.headers["x-custom"], status.headers["cache-control"]) == ("yes", "no-store")
    assert host.call("GET", "/api/r/strbody").headers["x-from"] == "object"
    cookie = raw_request(host.url, "GET", "/api/r/cookie").headers["set-cookie"]
    assert cookie == "session=abc123; domain=; path=/app; httponly"


@pytest.mark.parametrize("name, error", [
    ("r_dict", 'TypeError: unable to encode outgoing TypedData: unsupported type '
               '"<class \'azure.functions.http.HttpResponseConverter\'>" for Python type "dict"'),
    ("r_none", 'TypeError: unable to encode outgoing TypedData: unsupported type '
               '"<class \'azure.functions.http.HttpResponseConverter\'>" for Python type "NoneType"'),
    ("r_raise", "ValueError: boom from r_raise"),
])
def test_a_failed_invocation_is_500_with_an_empty_body_and_logged(host: HostProcess, name: str,
                                                                  error: str) -> None:
    since = len(host.lines)
    reply = host.call("GET", "/api/r/" + name[2:])
    assert (reply.status, reply.body) == (500, b"")
    failed = host.wait_for_log(rf"Executed 'Functions\.{name}' \((\w+), Id=([0-9a-f-]+), Duration=\d+ms\)",
                               since=since)
    assert failed.group(1) == "Failed"
    assert host.wait_for_log(r"Exception: (.*)", since=since).group(1) == error
    assert not any(f"Executed 'Functions.{name}' (Succeeded" in line for line in host.lines[since:])


def test_a_user_exception_logs_its_traceback(host: HostProcess) -> None:
    since = len(host.lines)
    host.call("GET", "/api/r/raise")
    host.wait_for_log(r"Stack: Traceback \(most recent call last\):", since=since)
    host.wait_for_log(r'File ".*function_app\.py", line \d+, in r_raise', since=since)
    host.wait_for_log(r"\] ValueError: boom from r_raise$", since=since)


def test_body_limit_from_functions_request_body_size_limit(host: HostProcess) -> None:
    since = len(host.lines)
    at_limit = host.call("POST", "/api/echo/limit", raw=b"x" * 1024)
    assert (at_limit.status, len(bytes.fromhex(at_limit.json()["body"]))) == (200, 1024)
    host.wait_for_log(r"Executed 'Functions\.echo'", since=since)
    since = len(host.lines)
    too_big = host.call("POST", "/api/echo/limit", raw=b"x" * 1025)
    assert (too_big.status, too_big.body) == (413, b"")
    host.call("GET", "/api/r/str")
    host.wait_for_log(r"Executed 'Functions\.r_str'", since=since)
    assert not any("Functions.echo" in line for line in host.lines[since:])  # the function never ran


def test_json_request_body(host: HostProcess) -> None:
    seen = host.call("POST", "/api/echo/json", {"k": "v"}).json()
    assert json.loads(bytes.fromhex(seen["body"])) == {"k": "v"}
    assert seen["headers"]["content-type"] == "application/json"
