"""Keys: not enforced by default (as `func start`); `--enable-auth` enforces authLevel (docs §4.4) with keys
that funcemu generates into the app folder's .funcemu/keys.json and prints at start.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_support import copy_app
from support import HostProcess

KEY_LINE = re.compile(r"^\t(\S+) \((admin|host|system|function)\): (\S+)$")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_app("auth_app", tmp_path_factory.mktemp("auth"))


@pytest.fixture(scope="module")
def host(app: Path) -> Iterator[HostProcess]:
    with HostProcess(app, "--enable-auth") as running:
        yield running


def printed_keys(host: HostProcess) -> dict[str, str]:
    return {m.group(1): m.group(3) for line in host.lines if (m := KEY_LINE.match(line))}


def test_keys_are_generated_stored_and_printed(host: HostProcess, app: Path) -> None:
    stored = json.loads((app / ".funcemu" / "keys.json").read_text())
    assert set(stored["functionKeys"]) == {"open_door", "keyed", "other", "admin_only"}
    assert printed_keys(host) == {"master": stored["masterKey"], "default": stored["hostKeys"]["default"],
                                  "durabletask_extension": stored["systemKeys"]["durabletask_extension"],
                                  **stored["functionKeys"]}
    assert len(set(printed_keys(host).values())) == 7
    assert f"Keys (--enable-auth; stored in {app / '.funcemu' / 'keys.json'}):" in host.lines


def test_function_level_needs_its_key_or_a_host_or_master_key(host: HostProcess, app: Path) -> None:
    stored = json.loads((app / ".funcemu" / "keys.json").read_text())
    own, others = stored["functionKeys"]["keyed"], stored["functionKeys"]["other"]
    assert (host.call("GET", "/api/keyed").status, host.call("GET", "/api/keyed").body) == (401, b"")
    assert host.call("GET", "/api/keyed", headers={"x-functions-key": own}).text == "keyed"
    assert host.call("GET", f"/api/keyed?code={own}").text == "keyed"
    assert host.call("GET", "/api/keyed", headers={"x-functions-key": stored["masterKey"]}).status == 200
    assert host.call("GET", "/api/keyed", headers={"x-functions-key": stored["hostKeys"]["default"]}).status == 200
    assert host.call("GET", "/api/keyed", headers={"x-functions-key": others}).status == 401
    assert host.call("GET", "/api/keyed?code=wrong").status == 401


def test_the_header_takes_precedence_over_the_code_parameter(host: HostProcess, app: Path) -> None:
    own = json.loads((app / ".funcemu" / "keys.json").read_text())["functionKeys"]["keyed"]
    assert host.call("GET", f"/api/keyed?code={own}", headers={"x-functions-key": "wrong"}).status == 401


def test_anonymous_needs_no_key_and_admin_needs_the_master_key(host: HostProcess, app: Path) -> None:
    stored = json.loads((app / ".funcemu" / "keys.json").read_text())
    assert host.call("GET", "/api/open").text == "open"
    own = stored["functionKeys"]["admin_only"]
    assert host.call("GET", "/api/manage", headers={"x-functions-key": own}).status == 401
    assert host.call("GET", "/api/manage", headers={"x-functions-key": stored["masterKey"]}).text == "admin"


def test_admin_endpoints_need_the_master_key_except_ping(host: HostProcess, app: Path) -> None:
    master = json.loads((app / ".funcemu" / "keys.json").read_text())["masterKey"]
    assert host.call("GET", "/admin/host/status").status == 401
    assert host.call("GET", "/admin/host/status", headers={"x-functions-key": master}).json()["state"] == "Running"
    assert host.call("POST", "/admin/functions/keyed", {"input": ""}).status == 401
    assert host.call("GET", "/admin/host/ping").status == 200


def test_keys_survive_a_restart(host: HostProcess, app: Path) -> None:
    with HostProcess(app, "--enable-auth") as again:
        assert printed_keys(again) == printed_keys(host)


def test_without_enable_auth_keys_are_not_enforced(app: Path) -> None:
    with HostProcess(app) as relaxed:
        assert relaxed.call("GET", "/api/keyed").text == "keyed"
        assert relaxed.call("GET", "/api/manage").text == "admin"
        assert relaxed.call("GET", "/admin/host/status").status == 200
        assert not any(KEY_LINE.match(line) for line in relaxed.lines)
