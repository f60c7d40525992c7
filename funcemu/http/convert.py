"""HTTP conversion: request data -> `func.HttpRequest`, and a function's `$return` -> the host's response.

Everything here reproduces the worker and host code paths of functions-host.md §3.7-3.8:
the library's `HttpResponseConverter.encode`, the worker's cookie conversion, and the host's
`HttpBinding.CreateResult` + `RawScriptResult` (including the JSON sniffing of string results and
Newtonsoft/.NET text rendering). No I/O: the server calls these and writes the `HttpResult`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from http.cookies import Morsel, SimpleCookie
from typing import Any
from urllib.parse import quote

import azure.functions as func
from azure.functions import _abc as azf_abc  # the converter checks the abstract class, so do we
from dateutil import parser as date_parser

from funcemu.http.newtonsoft import HostFailure, NetDateTime, NotJson, dotnet_double, dumps, loads

__all__ = [
    "HttpResult",
    "InvalidOperationException",
    "build_http_request",
    "check_response",
    "render_http_response",
    "render_response_object",
]

_CONVERTER = "<class 'azure.functions.http.HttpResponseConverter'>"
_EXPANDO = "System.Dynamic.ExpandoObject"  # what .NET's ToString() prints for a JSON object ...
_LIST = "System.Collections.Generic.List`1[System.Object]"  # ... and for a JSON array
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^;\"\s]*)", re.IGNORECASE)
_BAD_NAME_CHAR = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")  # Kestrel: a header name is an RFC 7230 token
_BAD_VALUE_CHAR = re.compile(r"[^\t\x20-\x7e]")  # Kestrel: HTAB, SP and visible ASCII only


@dataclass
class HttpResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class InvalidOperationException(ValueError):
    """What Kestrel throws for a response it refuses to send (named so the log reads as the host's)."""


# ---------------------------------------------------------------- request (§3.7)


def build_http_request(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    route_params: dict[str, str],
    body: bytes,
) -> func.HttpRequest:
    """The `func.HttpRequest` the worker builds from the host's RpcHttp."""
    return func.HttpRequest(
        method=method.upper(),
        url=url,
        headers=_joined((name.lower(), value) for name, value in headers),
        params={key: value for key, value in _joined(query).items() if value},
        route_params=dict(route_params),
        body=body or b"",
    )


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Group case-insensitively (first spelling kept) and join repeated values with ',' (StringValues)."""
    names: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        key = names.setdefault(name.upper(), name)
        values.setdefault(key, []).append(value)
    return {name: ",".join(parts) for name, parts in values.items()}


# ---------------------------------------------------------------- response entry point (§3.8)


def render_http_response(value: object) -> HttpResult:
    """The response for what an HTTP function returned through its `http` `$return` binding.

    Raises TypeError (the worker's text) for values the converter cannot encode, and ValueError for
    values the host fails on; the invocation then fails and the caller answers 500 with an empty body.
    """
    if isinstance(value, str):
        return _render_string(value)
    if isinstance(value, azf_abc.HttpResponse):
        return _render_function_response(value)
    raise TypeError(
        f'unable to encode outgoing TypedData: unsupported type "{_CONVERTER}" '
        f'for Python type "{type(value).__name__}"'
    )


def _render_function_response(response: azf_abc.HttpResponse) -> HttpResult:
    """HttpResponseConverter.encode, then the host's RpcHttp handling (body written as raw bytes)."""
    items = [(str(name), str(value)) for name, value in response.headers.items()]
    cookies = [value for name, value in items if name.lower() == "set-cookie"]
    items = [(name, value) for name, value in items if name.lower() != "set-cookie"]
    if not any(name.lower() == "content-type" for name, _ in items):
        mimetype, charset = response.mimetype, response.charset
        items.append(
            ("content-type", f"{mimetype}; charset={charset}" if mimetype.startswith("text/") else mimetype)
        )
    collapsed = dict(items)  # the worker's dict: one value per exact name, the last one
    status = _parse_int32(str(response.status_code))
    content_type, headers = _host_headers(collapsed.items())
    set_cookies = [("Set-Cookie", cookie) for raw in cookies for cookie in _render_cookies(raw)]
    return HttpResult(
        200 if status is None else status,
        [("Content-Type", content_type or "")] + headers + set_cookies,
        response.get_body() or b"",
    )


def _host_headers(pairs: Iterable[tuple[str, object]]) -> tuple[str | None, list[tuple[str, str]]]:
    """RawScriptResult: content-type sets Content-Type (last wins); other names keep their first value."""
    content_type: str | None = None
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in pairs:
        if name.lower() == "content-type":
            if value is None:
                raise ValueError("content-type header cannot be null")
            content_type = _dotnet_text(value)
        elif name.lower() not in seen:
            if value is None:
                raise ValueError(f"header '{name}' is null")  # a NullReferenceException in the host
            seen.add(name.lower())
            headers.append((name, _dotnet_text(value)))
    return content_type, headers


def check_response(result: HttpResult, method: str) -> None:
    """Raise InvalidOperationException for a response Kestrel would not send (the host then answers
    500 with an empty body): a header with a non-ASCII or control character, a Content-Length that
    is not a number or does not match the body, a status code that is not three digits."""
    if not 100 <= result.status <= 999:
        # Kestrel's exact bytes for such codes are not known; HTTP/1.1 status codes are three digits
        # and clients (curl, http.client) refuse anything else, so this fails like the cases below.
        raise InvalidOperationException(f"Invalid status code {result.status}: not three digits.")
    for name, value in result.headers:
        bad = _BAD_NAME_CHAR.search(name) or _BAD_VALUE_CHAR.search(value)
        if bad:
            code = ord(bad.group())
            if code > 0xFFFF:  # .NET reports the first UTF-16 code unit (the high surrogate)
                code = 0xD800 + ((code - 0x10000) >> 10)
            raise InvalidOperationException(f"Invalid non-ASCII or control character in header: 0x{code:04X}")
        if name.lower() == "content-length":
            _check_content_length(value, len(result.body), method, result.status)


def _check_content_length(value: str, written: int, method: str, status: int) -> None:
    """Kestrel parses the header when it is set, and checks the bytes written against it
    (not for HEAD or 304, whose body is never written)."""
    if not (value.isascii() and value.isdigit()):
        raise InvalidOperationException(f'Invalid Content-Length: "{value}". Value must be a positive integral number.')
    expected = int(value)
    if method == "HEAD" or status == 304 or written == expected:
        return
    which = "many" if written > expected else "few"
    raise InvalidOperationException(
        f"Response Content-Length mismatch: too {which} bytes written ({written} of {expected})."
    )


# ---------------------------------------------------------------- cookies


def _render_cookies(header: str) -> list[str]:
    """One Set-Cookie header value -> what ASP.NET writes after the worker/host round trip.

    The worker parses it with SimpleCookie and always sends domain and path as strings, empty when
    unset, so the host renders `domain=; path=` (azure-functions-python-worker#1902). ASP.NET writes
    the attributes in a fixed order and percent-encodes the value (Uri.EscapeDataString).
    """
    return [_render_cookie(name, morsel) for name, morsel in SimpleCookie(header).items()]


def _render_cookie(name: str, morsel: Morsel[str]) -> str:
    parts = [f"{name}={quote(morsel.value, safe='')}"]
    if morsel["expires"]:
        parts.append(f"expires={_cookie_date(morsel['expires'])}")
    if morsel["max-age"] != "":
        parts.append(f"max-age={_cookie_max_age(morsel['max-age'])}")
    parts += [f"domain={morsel['domain']}", f"path={morsel['path']}"]
    if morsel["secure"]:
        parts.append("secure")
    same_site = str(morsel["samesite"]).lower()
    if same_site in ("lax", "strict", "none"):
        parts.append(f"samesite={same_site}")
    if morsel["httponly"]:
        parts.append("httponly")
    return "; ".join(parts)


def _cookie_date(text: str) -> str:
    """The worker parses with dateutil and sends whole seconds (a naive date is local time, as there)."""
    seconds = int(date_parser.parse(text).timestamp())
    return format_datetime(datetime.fromtimestamp(seconds, timezone.utc), usegmt=True)


def _cookie_max_age(text: str) -> int:
    seconds = float(text)  # the worker's to_nullable_double; the host truncates TimeSpan.TotalSeconds
    if not math.isfinite(seconds):
        raise ValueError(f"cookie max-age {text!r} is not a finite number")
    return int(seconds)


# ---------------------------------------------------------------- string results: the host's JSON sniffing


def _render_string(text: str) -> HttpResult:
    """HttpBinding.CreateResult for a string: JsonConvert.DeserializeObject first, then per kind.

    Newtonsoft's reader is lenient (see funcemu.http.newtonsoft); what it rejects stays a plain string.
    A JObject is written out indented (JToken.ToString()) and read again as an ExpandoObject, outside
    the host's try block: that second reading decides whether it is a response object.
    """
    try:
        value = loads(text)  # whitespace or comments only: null, an empty body
    except NotJson:
        return _text_result(200, text, None, [])
    if isinstance(value, dict):
        indented = dumps(value, indented=True)
        try:
            expando = loads(indented, expando=True)
        except NotJson as error:
            raise HostFailure(str(error)) from error
        if _lookup(expando, "body") is not _MISSING:
            return render_response_object(expando)
        return _text_result(200, indented, None, [])
    if isinstance(value, list):
        return _text_result(200, dumps(value, indented=True), None, [])
    return _text_result(200, "" if value is None else _dotnet_text(value), None, [])


def render_response_object(obj: dict[str, Any]) -> HttpResult:
    """A JSON object with a `body` key: body, headers, statusCode|status (keys case-insensitive).

    `cookies` is ignored (the host only takes the worker's typed cookie list there) and so is
    `enableContentNegotiation` (content negotiation through MVC formatters is not emulated).
    """
    body = _lookup(obj, "body")
    headers = _lookup(obj, "headers")
    content_type, header_list = _host_headers(headers.items()) if isinstance(headers, dict) else (None, [])
    if body is _MISSING or body is None:
        text = ""
    elif isinstance(body, dict):
        text = dumps(body, indented=False)  # Utility.ToJson(ExpandoObject, Formatting.None)
    else:
        text = _dotnet_text(body)
    return _text_result(_response_status(obj), text, content_type, header_list)


def _response_status(obj: dict[str, Any]) -> int:
    """HttpBinding.TryParseStatusCode: `statusCode`, else `status`; ints and numeric strings only."""
    value = _lookup(obj, "statusCode")
    if value is _MISSING:
        value = _lookup(obj, "status")
    if isinstance(value, str):
        parsed = _parse_int32(value)
        return 200 if parsed is None else parsed
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        if not -(2**31) <= value < 2**31:
            raise ValueError(f"status code {value} is outside the Int32 range")  # Convert.ToInt32 overflow
        return value
    return 200


def _text_result(
    status: int, text: str, content_type: str | None, headers: list[tuple[str, str]]
) -> HttpResult:
    """StringOutputFormatter: text/plain unless set; the charset becomes utf-8 (or stays utf-16)."""
    media = content_type or "text/plain"
    found = _CHARSET.search(media)
    wide = found is not None and found.group(1).lower() in ("utf-16", "unicode")
    label = "utf-16" if wide else "utf-8"
    media = (
        f"{media[: found.start(1)]}{label}{media[found.end(1) :]}" if found else f"{media}; charset={label}"
    )
    return HttpResult(
        status, [("Content-Type", media)] + headers, _encode(text, "utf-16-le" if wide else "utf-8")
    )


def _encode(text: str, encoding: str) -> bytes:
    """Encode like .NET: a lone surrogate becomes U+FFFD instead of failing."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode(encoding)


_MISSING: Any = object()


def _lookup(obj: dict[str, Any], key: str) -> Any:
    """ExpandoObject TryGetValue(ignoreCase: true): the first key equal ignoring case."""
    return next((value for name, value in obj.items() if name.lower() == key.lower()), _MISSING)


def _parse_int32(text: str) -> int | None:
    """int.TryParse(NumberStyles.Integer, invariant)."""
    found = re.fullmatch(r"[\t-\r ]*([+-]?[0-9]+)[\t-\r ]*", text)
    number = int(found.group(1)) if found else None
    return number if number is not None and -(2**31) <= number < 2**31 else None


# ---------------------------------------------------------------- .NET / Newtonsoft text rendering


def _dotnet_text(value: object) -> str:
    """object.ToString() of a value Newtonsoft parsed: True/False, shortest doubles, dates, .NET type names."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return dotnet_double(value)
    if isinstance(value, NetDateTime):
        return value.dotnet_text()
    if isinstance(value, dict):
        return _EXPANDO
    if isinstance(value, list):
        return _LIST
    return str(value)
