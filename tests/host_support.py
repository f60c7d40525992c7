"""Helpers for the host end-to-end tests (tests/host/test_e2e_*.py): the test apps and raw HTTP calls."""

from __future__ import annotations

import http.client
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

from support import Reply

APPS = Path(__file__).parent / "host" / "apps"


def copy_app(name: str, target: Path) -> Path:
    """A private copy of a test app, for tests that write into the app folder or break one of its files."""
    destination = target / name
    shutil.copytree(APPS / name, destination, ignore=shutil.ignore_patterns("__pycache__", ".funcemu"))
    return destination


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_request(base_url: str, method: str, path: str, headers: list[tuple[str, str]] | None = None,
                body: bytes | None = None, chunked: bool = False) -> Reply:
    """One request with full control: repeated headers, chunked bodies (http.client, no redirects)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        elif body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        if body is not None:
            connection.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked else body)
        response = connection.getresponse()
        return Reply(response.status, _headers(response), response.read())
    finally:
        connection.close()


def _headers(response: http.client.HTTPResponse) -> dict[str, str]:
    """Lower-cased names; repeated headers (Set-Cookie) joined with '\\n' so none is lost."""
    merged: dict[str, str] = {}
    for name, value in response.getheaders():
        key = name.lower()
        merged[key] = f"{merged[key]}\n{value}" if key in merged else value
    return merged
