"""Configuration end to end (docs §6, §7, §4.7): local.settings.json Values and ConnectionStrings, Host.CORS
and Host.CORSCredentials, Host.LocalHttpPort, PYTHON_SCRIPT_FILE_NAME, routePrefix "" and the
AzureFunctionsJobHost__ overrides, the CLI options that override the files, and the console script.

tests/host/apps/config_app keeps its functions in main_app.py and has the empty route prefix.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_support import APPS, copy_app, free_port
from support import HostProcess, request

APP = APPS / "config_app"
ALLOWED = "http://allowed.example"


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    with HostProcess(APP, env={"PRESET": "from-env"}, cwd=APP.parent) as running:
        yield running


def test_values_and_connection_strings_become_environment_variables(host: HostProcess) -> None:
    seen = host.call("GET", "/settings").json()
    assert (seen["MY_SETTING"], seen["PRESET"], seen["EMPTY_SETTING"]) == ("from-settings", "from-env", "")
    assert seen["ConnectionStrings:Db"] == "Server=local;Database=app"
    assert seen["ConnectionStrings:Typed"] == "Data Source=typed"
    host.wait_for_log(r"Skipping 'PRESET' from local settings as it's already defined in current "
                      r"environment variables\.$")


def test_core_tools_settings_and_the_working_directory(host: HostProcess) -> None:
    seen = host.call("GET", "/settings").json()
    assert seen["AZURE_FUNCTIONS_ENVIRONMENT"] == "Development"
    assert seen["AzureWebJobsScriptRoot"] == seen["cwd"] == str(APP)
    assert seen["WEBSITE_HOSTNAME"] == "localhost:" + host.url.rsplit(":", 1)[1]


def test_python_script_file_name_and_the_empty_route_prefix(host: HostProcess) -> None:
    assert any(line.startswith("\tsettings:  http://localhost:") and line.endswith("/settings")
               for line in host.lines)
    assert host.call("GET", "/settings").status == 200
    assert host.call("GET", "/api/settings").status == 404


def test_a_log_level_override_from_values(host: HostProcess) -> None:
    """`AzureFunctionsJobHost__logging__logLevel__Function.muted: None` silences that function."""
    since = len(host.lines)
    assert host.call("GET", "/muted").text == "muted"
    host.call("GET", "/settings")
    host.wait_for_log(r"Executed 'Functions\.settings'", since=since)
    assert not any("muted" in line for line in host.lines[since:])


def preflight(host: HostProcess, origin: str, path: str = "/settings") -> dict[str, str]:
    reply = host.call("OPTIONS", path, headers={"Origin": origin, "Access-Control-Request-Method": "PATCH",
                                                "Access-Control-Request-Headers": "x-custom,content-type"})
    assert (reply.status, reply.body) == (204, b"")
    return reply.headers


def test_cors_preflight_from_local_settings(host: HostProcess) -> None:
    headers = preflight(host, ALLOWED)
    assert headers["access-control-allow-origin"] == ALLOWED
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-allow-methods"] == "PATCH"
    assert headers["access-control-allow-headers"] == "x-custom,content-type"
    assert "access-control-allow-origin" not in preflight(host, "http://evil.example")


def test_cors_headers_on_ordinary_responses(host: HostProcess) -> None:
    allowed = host.call("GET", "/settings", headers={"Origin": "http://other.example"})
    assert allowed.headers["access-control-allow-origin"] == "http://other.example"
    assert "access-control-allow-origin" not in host.call("GET", "/settings", headers={"Origin": "http://x.y"}).headers
    assert "access-control-allow-origin" not in host.call("GET", "/settings").headers


def test_environment_override_of_the_route_prefix_and_the_cors_option() -> None:
    env = {"AzureFunctionsJobHost__extensions__http__routePrefix": "custom"}
    with HostProcess(APP, "--cors", "http://cli.example", env=env) as overridden:
        assert overridden.call("GET", "/custom/settings").status == 200
        assert overridden.call("GET", "/settings").status == 404
        assert preflight(overridden, "http://cli.example", "/custom/settings")[
            "access-control-allow-origin"] == "http://cli.example"
        assert "access-control-allow-origin" not in preflight(overridden, ALLOWED, "/custom/settings")


def test_console_script_in_a_subfolder_uses_local_http_port(tmp_path: Path) -> None:
    app = copy_app("config_app", tmp_path)
    settings = json.loads((app / "local.settings.json").read_text())
    port = free_port()
    settings["Host"]["LocalHttpPort"] = port
    (app / "local.settings.json").write_text(json.dumps(settings))
    (app / "sub").mkdir()
    command = [str(Path(sys.executable).parent / "funcemu"), "start", "--host", "127.0.0.1"]
    with HostProcess(app, command=command, cwd=app / "sub") as running:
        assert running.url == f"http://127.0.0.1:{port}"
        assert request("GET", f"http://127.0.0.1:{port}/admin/host/status").json()["state"] == "Running"
        assert request("GET", f"http://127.0.0.1:{port}/settings").json()["cwd"] == str(app)
