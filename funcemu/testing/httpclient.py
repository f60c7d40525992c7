"""A tiny synchronous HTTP client for tests: one call per request, every status code returned, never raised.

Built on `http.client` so it needs no dependency and ignores proxy settings (tests talk to a local host,
or to one deployed app given by URL).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    url: str = ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; an empty body is None."""
        return json.loads(self.body) if self.body.strip() else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __str__(self) -> str:
        text = self.text if len(self.text) <= 2000 else self.text[:2000] + "..."
        return f"HTTP {self.status} from {self.url}: {text or '(empty body)'}"


class HttpClient:
    """Requests relative to `base_url` (or to absolute URLs), with the host key sent when given.

    >>> HttpClient("http://127.0.0.1:7071").post("/api/orders", json={"orderId": "A-1"}).status
    """

    __test__ = False

    def __init__(self, base_url: str, key: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        url = urljoin(self.base_url + "/", path.lstrip("/")) if "://" not in path else path
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return url

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Response:
        return self.request("GET", path, params=params)

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Response:
        return self.request("DELETE", path, params=params)

    def post(
        self,
        path: str,
        json: Any = None,
        *,
        data: bytes | str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """POST `json` (any value, encoded once) or raw `data`; with neither, an empty body."""
        return self.request("POST", path, json=json, data=data, params=params, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        url = self.url(path, params)
        body, sent_headers = self._body_and_headers(json, data, headers)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._connect(parts.scheme, parts.netloc)
        try:
            connection.request(method, target, body=body, headers=sent_headers)
            answer = connection.getresponse()
            content = answer.read()
            received = {name.lower(): value for name, value in answer.getheaders()}
            return Response(answer.status, received, content, url)
        finally:
            connection.close()

    def _body_and_headers(
        self, value: Any, data: bytes | str | None, headers: Mapping[str, str] | None
    ) -> tuple[bytes | None, dict[str, str]]:
        sent = {"Accept": JSON_TYPE}
        if self.key:
            sent["x-functions-key"] = self.key
        body: bytes | None = None
        if value is not None:
            body = json.dumps(value).encode()
            sent["Content-Type"] = JSON_TYPE
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        sent.update(headers or {})
        return body, sent

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=self.timeout)
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=self.timeout)
        raise ValueError(f"only http and https URLs are supported, got {scheme!r}")
