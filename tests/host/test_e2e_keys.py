"""How a key is read with `--enable-auth` (§4.4, AuthenticationLevelHandler): the `x-functions-key` header
whenever present, else the `code` query parameter, its name matched ignoring case (ASP.NET QueryCollection)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_support import copy_app, raw_request
from support import HostProcess


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    with HostProcess(copy_app("auth_app", tmp_path_factory.mktemp("keys")), "--enable-auth") as running:
        yield running


def stored_keys(host: HostProcess) -> dict[str, str]:
    stored = json.loads((Path(host.app) / ".funcemu" / "keys.json").read_text())
    return {"master": stored["masterKey"], "keyed": stored["functionKeys"]["keyed"]}


@pytest.mark.parametrize("name", ["code", "CODE", "Code", "cOdE"])
def test_the_code_parameter_name_matches_ignoring_case(host: HostProcess, name: str) -> None:
    keys = stored_keys(host)
    assert host.call("GET", f"/api/keyed?{name}={keys['keyed']}").text == "keyed"
    assert host.call("GET", f"/admin/host/status?{name}={keys['master']}").json()["state"] == "Running"
    assert host.call("GET", f"/api/keyed?{name}=wrong").status == 401


def test_the_first_code_value_counts(host: HostProcess) -> None:
    own = stored_keys(host)["keyed"]
    assert host.call("GET", f"/api/keyed?CODE={own}&code=wrong").status == 200
    assert host.call("GET", f"/api/keyed?Code=wrong&code={own}").status == 401


def test_an_empty_header_is_no_key_even_with_a_valid_code(host: HostProcess) -> None:
    keys = stored_keys(host)
    empty = raw_request(host.url, "GET", f"/api/keyed?code={keys['keyed']}", headers=[("x-functions-key", "")])
    assert (empty.status, empty.body) == (401, b"")
    admin = raw_request(host.url, "GET", f"/admin/host/status?code={keys['master']}",
                        headers=[("X-Functions-Key", "")])
    assert admin.status == 401
    assert raw_request(host.url, "GET", "/api/open", headers=[("x-functions-key", "")]).text == "open"
