"""Console levels and startup notices end to end (docs §8): `--user-log-level` / FUNCTIONS_USER_LOG_LEVEL,
CI environments, the two lines Core Tools always shows, the proxies.json warning, `--address` checks.

A CI environment is set or cleared explicitly in each host, so these tests do not depend on the runner's.
"""

from __future__ import annotations

import json
from pathlib import Path

from host_support import APPS, copy_app
from support import HostProcess, run_cli

from funcemu.console import CI_VARIABLES

NOT_CI = dict.fromkeys(CI_VARIABLES, "")
WORKER = "Worker process started and initialized."
LEASE = "Host lock lease acquired by instance ID '"
PROXIES = ("Warning: Proxies are not supported in Azure Functions v4. Instead of 'proxies.json', "
           "try Azure API Management: https://aka.ms/AAfiueq")


def logged(host: HostProcess, since: int = 0) -> list[str]:
    """The messages of the `[time] message` lines."""
    return [line.split("] ", 1)[1] for line in host.lines[since:] if line.startswith("[") and "] " in line]


def call_logs(host: HostProcess) -> list[str]:
    """GET /api/logs (logs user info, warning and debug lines) and the messages logged by then."""
    since = len(host.lines)
    assert host.call("GET", "/api/logs").text == "logged"
    host.wait_for_log(r"user warning line", since=since)
    host.call("GET", "/api/quiet")  # one more call, so that anything /api/logs logged is in by now
    host.wait_for_log(r"quiet warning line", since=since)
    return logged(host, since)


def test_user_log_level_flag_shows_user_debug_lines() -> None:
    with HostProcess(APPS / "invoke_app", "--user-log-level", "debug", env=NOT_CI) as host:
        messages = call_logs(host)
    assert "user debug line" in messages and "user info line" in messages
    assert not any(m.startswith("Host started") for m in logged(host))  # system levels unchanged


def test_user_log_level_setting_raises_the_user_level() -> None:
    """FUNCTIONS_USER_LOG_LEVEL=Warning: user Information (Executing/Executed too) is hidden, warnings shown."""
    with HostProcess(APPS / "invoke_app", env={**NOT_CI, "FUNCTIONS_USER_LOG_LEVEL": "Warning"}) as host:
        messages = call_logs(host)
    assert "user warning line" in messages
    assert not any(m == "user info line" or m.startswith("Executing ") for m in messages)


def test_the_flag_wins_over_the_setting_and_a_bad_name_is_ignored() -> None:
    env = {**NOT_CI, "FUNCTIONS_USER_LOG_LEVEL": "Warning"}
    with HostProcess(APPS / "invoke_app", "--user-log-level", "Debug", env=env) as host:
        assert "user debug line" in call_logs(host)
    with HostProcess(APPS / "invoke_app", "--user-log-level", "Loud", env=NOT_CI) as host:
        messages = call_logs(host)
    assert "user info line" in messages and "user debug line" not in messages


def test_an_explicit_user_level_is_kept_over_host_json_default(tmp_path: Path) -> None:
    """host.json `default` sets the system level, and the user level only when none was given."""
    app = copy_app("invoke_app", tmp_path)
    host_json = json.loads((app / "host.json").read_text())
    host_json["logging"]["logLevel"]["default"] = "Warning"
    (app / "host.json").write_text(json.dumps(host_json))
    with HostProcess(app, "--user-log-level", "Information", env=NOT_CI) as host:
        assert "user info line" in call_logs(host)
    with HostProcess(app, env=NOT_CI) as host:
        assert "user info line" not in call_logs(host)


def test_always_shown_lines_pass_a_default_of_none(tmp_path: Path) -> None:
    app = copy_app("minimal_app", tmp_path)
    (app / "host.json").write_text(json.dumps({"version": "2.0", "logging": {"logLevel": {"default": "None"}}}))
    with HostProcess(app, env=NOT_CI) as host:
        host_id = host.call("GET", "/admin/host/status").json()["id"]
        assert logged(host) == [WORKER, f"{LEASE}{host_id}'."]


def test_a_ci_environment_shows_system_information_lines() -> None:
    """CI (or CONTINUOUS_INTEGRATION, BUILD_NUMBER, RUN_ID) works as --verbose for the console levels only."""
    with HostProcess(APPS / "minimal_app", env={**NOT_CI, "BUILD_NUMBER": "7"}) as host:
        messages = logged(host)
        assert any(m.startswith("Host started (") for m in messages)
        assert "For detailed output, run func with --verbose flag." in host.lines  # the flag was not given


def test_proxies_json_is_a_warning_and_the_host_starts(tmp_path: Path) -> None:
    app = copy_app("minimal_app", tmp_path)
    (app / "proxies.json").write_text('{"proxies": {}}')
    with HostProcess(app, env=NOT_CI) as host:
        assert host.call("GET", "/api/hello").text == "hello"
    banner_end = host.lines.index("Function Runtime Version: 4.1037.0 (emulated)")
    assert host.lines[banner_end + 2] == PROXIES


def test_no_proxies_warning_without_the_file() -> None:
    with HostProcess(APPS / "minimal_app", env=NOT_CI) as host:
        assert PROXIES not in host.lines


def test_address_must_be_an_ip_address() -> None:
    result = run_cli("start", "--app", str(APPS / "minimal_app"), "--port", "0", "--address", "localhost")
    assert result.returncode == 1
    assert result.stderr.strip() == ("--address: 'localhost' is not an IP address (a host name is not accepted; "
                                     "use e.g. 127.0.0.1 or 0.0.0.0)")
    assert "Functions:" not in result.stdout


def test_worker_and_application_directories(tmp_path: Path) -> None:
    """The worker's environment names the worker's install directory and the app root (docs §1.2)."""
    app = copy_app("minimal_app", tmp_path)
    (app / "function_app.py").write_text(
        "import os\nimport azure.functions as func\n\napp = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
        "\n\n@app.route(route='dirs')\ndef dirs(req: func.HttpRequest) -> str:\n"
        "    return os.environ['FUNCTIONS_APPLICATION_DIRECTORY'] + '|' + os.environ['FUNCTIONS_WORKER_DIRECTORY']\n")
    with HostProcess(app, env={**NOT_CI, "FUNCTIONS_APPLICATION_DIRECTORY": "/elsewhere"}) as host:
        application, worker = host.call("GET", "/api/dirs").text.split("|")
    assert application == str(app.resolve())
    assert (Path(worker) / "cli.py").is_file() and Path(worker).name == "funcemu"
