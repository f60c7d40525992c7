"""`AzureWebJobs.<name>.Disabled` (functions-host.md §4.3): listed as disabled; HTTP 404 below admin level."""

from __future__ import annotations

import json
from pathlib import Path

from support import HostProcess

APP = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="on")
def on(req: func.HttpRequest) -> str:
    return "on"


@app.route(route="off")
def off(req: func.HttpRequest) -> str:
    return "off"
"""


def make_app(folder: Path) -> Path:
    folder.mkdir()
    (folder / "function_app.py").write_text(APP)
    (folder / "host.json").write_text(json.dumps({"version": "2.0"}))
    (folder / "local.settings.json").write_text(json.dumps(
        {"IsEncrypted": False, "Values": {"AzureWebJobs.off.Disabled": "true"}}))
    return folder


def test_a_disabled_function_is_listed_as_disabled_and_refused_without_admin_level(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    with HostProcess(app, "--enable-auth") as host:
        assert "Function off is disabled." in host.lines
        assert not any(line.startswith("\toff:") for line in host.lines)
        master = json.loads((app / ".funcemu" / "keys.json").read_text())["masterKey"]
        assert host.call("GET", "/api/on").status == 200
        assert host.call("GET", "/api/off").status == 404
        assert host.call("GET", "/api/off", headers={"x-functions-key": master}).text == "off"
        meta = host.call("GET", "/admin/functions/off", headers={"x-functions-key": master}).json()
        assert meta["isDisabled"] is True


def test_without_enable_auth_every_caller_is_admin_so_it_still_answers(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    with HostProcess(app) as host:
        assert "Function off is disabled." in host.lines
        assert host.call("GET", "/api/off").text == "off"
