"""Kestrel's rules at the edges, over real HTTP (tests/host/apps/kestrel_app, routePrefix ""):
Request.Path (absolute-form targets, dot segments, §3.7/§4.2), MVC admin routes before a catch-all
function route (§4.1), and responses Kestrel refuses to send (§3.8: 500, empty body, logged failure).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from host_support import APPS, raw_request
from support import HostProcess


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    with HostProcess(APPS / "kestrel_app") as running:
        yield running


def test_an_absolute_form_target_gives_path_and_query_from_the_target(host: HostProcess) -> None:
    """`curl --proxy` sends `GET http://host:port/path HTTP/1.1`; url is still Host header + Path + query."""
    reply = raw_request(host.url, "GET", host.url + "/items/via%41proxy?q=%41")
    assert reply.json() == {"url": host.url + "/items/viaAproxy?q=%41", "id": "viaAproxy"}


@pytest.mark.parametrize("target, path, item", [
    ("/./items/x", "/items/x", "x"),
    ("/items/../items/y", "/items/y", "y"),
    ("/a/b/../../items/%2E/z", "/items/z", "z"),
    ("/../../items/w?k=/../", "/items/w?k=/../", "w"),
])
def test_dot_segments_are_removed_before_routing(host: HostProcess, target: str, path: str, item: str) -> None:
    assert raw_request(host.url, "GET", target).json() == {"url": host.url + path, "id": item}


@pytest.mark.parametrize("path", ["/ADMIN/host/status", "/Admin/Host/Status", "/admin/host/status/",
                                  "/admin/./host/status", "/x/../admin/host/status"])
def test_admin_routes_match_ignoring_case_and_one_trailing_slash(host: HostProcess, path: str) -> None:
    reply = raw_request(host.url, "GET", path)
    assert (reply.status, reply.json()["state"]) == (200, "Running")


def test_admin_routes_before_the_catch_all_function(host: HostProcess) -> None:
    assert raw_request(host.url, "GET", "/Admin/Host/Ping").body == b""
    assert raw_request(host.url, "POST", "/admin/host/ping/").status == 200
    assert raw_request(host.url, "GET", "/ADMIN/Functions/ITEMS/").json()["name"] == "items"
    assert [f["name"] for f in raw_request(host.url, "GET", "/admin/functions/").json()] == [
        "items", "respond", "zz_catch_all"]
    # two trailing slashes, a method no admin route takes, or no admin route at all: the function routes
    assert raw_request(host.url, "GET", "/admin/host/status//").text == "catch-all"
    assert raw_request(host.url, "PUT", "/admin/host/status").text == "catch-all"
    assert raw_request(host.url, "GET", "/administration").text == "catch-all"


@pytest.mark.parametrize("kind, error", [
    ("control", "Invalid non-ASCII or control character in header: 0x0001"),
    ("value", "Invalid non-ASCII or control character in header: 0x00E9"),
    ("name", "Invalid non-ASCII or control character in header: 0x00E9"),
    ("object", "Invalid non-ASCII or control character in header: 0x2603"),
    ("length-short", "Response Content-Length mismatch: too few bytes written (3 of 10)."),
    ("length-long", "Response Content-Length mismatch: too many bytes written (3 of 1)."),
    ("length-bad", 'Invalid Content-Length: "three". Value must be a positive integral number.'),
    ("1000", "Invalid status code 1000: not three digits."),
    ("99", "Invalid status code 99: not three digits."),
    ("0", "Invalid status code 0: not three digits."),
    ("-1", "Invalid status code -1: not three digits."),
    ("object-status", "Invalid status code 1000: not three digits."),
])
def test_a_response_kestrel_refuses_is_500_empty_and_a_failed_invocation(host: HostProcess, kind: str,
                                                                        error: str) -> None:
    since = len(host.lines)
    reply = raw_request(host.url, "GET", f"/respond/{kind}")
    assert (reply.status, reply.body) == (500, b"")
    failed = host.wait_for_log(r"Executed 'Functions\.respond' \((\w+), Id=", since=since)
    assert failed.group(1) == "Failed"
    assert host.wait_for_log(r"Exception: (.*)", since=since).group(1) == f"InvalidOperationException: {error}"


def test_valid_headers_a_matching_content_length_and_keep_alive(host: HostProcess) -> None:
    """Two requests on one connection: the framing holds after a response with a user Content-Length."""
    port = int(host.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /respond/length-ok HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /respond/ascii HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    first, second = received.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 OK\r\n") and first.endswith(b"\r\n\r\nxyz")
    assert first.lower().count(b"content-length:") == 1
    assert second.startswith(b"200 OK\r\n") and b"\r\nX-U: tab\there ~\r\n" in second
    assert raw_request(host.url, "HEAD", "/respond/length-short").status == 200  # HEAD writes no body
