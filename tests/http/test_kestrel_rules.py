"""Kestrel/ASP.NET rules without a host: Request.Path, the request url, admin route matching,
the key a request presents, and the responses Kestrel refuses to send."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiohttp.test_utils import make_mocked_request

from funcemu.http.admin import AdminApi
from funcemu.http.convert import HttpResult, InvalidOperationException, check_response
from funcemu.http.keys import request_key
from funcemu.http.server import remove_dot_segments, request_url


@pytest.mark.parametrize("path, expected", [
    ("/a/./b", "/a/b"), ("/a/b/../c", "/a/c"), ("/a/b/..", "/a/"), ("/a/.", "/a/"), ("/..", "/"),
    ("/../../x", "/x"), ("/a//../b", "/a/b"), ("/a/.b/..c/", "/a/.b/..c/"), ("/.", "/"),
])
def test_remove_dot_segments(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


@pytest.mark.parametrize("raw, url", [
    ("/api/x?q=%41", "http://h:1/api/x?q=%41"),
    ("/api/%2E%2E/x/./%41%2Fb", "http://h:1/x/A%2Fb"),
    ("http://other:2/api/x?q=/../", "http://h:1/api/x?q=/../"),
    ("http://other:2?q=1", "http://h:1/?q=1"),
    ("http://other:2", "http://h:1/"),
])
def test_request_url(raw: str, url: str) -> None:
    assert request_url("http", "h:1", raw) == url


def test_admin_routes_match_as_mvc_attribute_routes() -> None:
    admin = AdminApi(SimpleNamespace())  # type: ignore[arg-type]
    found = admin.resolve("GET", "/ADMIN/Functions/Some_Name/")
    assert found is not None and found[1] == {"name": "Some_Name"}
    assert admin.resolve("HEAD", "/admin/host/status") is not None
    assert admin.resolve("DELETE", "/Admin/Host/Ping/") is not None
    for method, path in [("GET", "/admin/host/status//"), ("PUT", "/admin/host/status"),
                         ("GET", "/admin/functions/a/b"), ("GET", "/api/admin/host/status"), ("GET", "/admin")]:
        assert admin.resolve(method, path) is None, (method, path)


@pytest.mark.parametrize("headers, query, key", [
    ({"x-functions-key": "h"}, "code=q", "h"),
    ({"X-Functions-Key": ""}, "code=q", ""),
    ({}, "CODE=q&code=r", "q"),
    ({}, "Code=", ""),
    ({}, "codes=q", None),
])
def test_request_key(headers: dict[str, str], query: str, key: str | None) -> None:
    assert request_key(make_mocked_request("GET", "/api/x?" + query, headers=headers)) == key


def result(status: int = 200, body: bytes = b"", **headers: str) -> HttpResult:
    return HttpResult(status, [("Content-Type", "text/plain")] + list(headers.items()), body)


@pytest.mark.parametrize("response, method", [
    (result(X_A="\t ~visible"), "GET"), (result(100), "GET"), (result(999), "GET"),
    (result(body=b"abc", **{"Content-Length": "3"}), "GET"),
    (result(body=b"abc", **{"Content-Length": "10"}), "HEAD"),
    (result(304, **{"Content-Length": "10"}), "GET"),
])
def test_responses_kestrel_sends(response: HttpResult, method: str) -> None:
    check_response(response, method)


@pytest.mark.parametrize("response, message", [
    (result(X_A="caf\u00e9"), "Invalid non-ASCII or control character in header: 0x00E9"),
    (result(X_A="a\x7fb"), "Invalid non-ASCII or control character in header: 0x007F"),
    (result(X_A="\U0001f600"), "Invalid non-ASCII or control character in header: 0xD83D"),
    (result(**{"X A": "v"}), "Invalid non-ASCII or control character in header: 0x0020"),
    (result(body=b"abc", **{"Content-Length": "+3"}), 'Invalid Content-Length: "+3".'),
    (result(body=b"abc", **{"content-length": "2"}), "too many bytes written (3 of 2)"),
    (result(body=b"abc", **{"Content-Length": "4"}), "too few bytes written (3 of 4)"),
    (result(1000), "Invalid status code 1000"), (result(99), "Invalid status code 99"),
])
def test_responses_kestrel_refuses(response: HttpResult, message: str) -> None:
    with pytest.raises(InvalidOperationException) as failure:
        check_response(response, "GET")
    assert message in str(failure.value)
