"""Bad input to `funcemu start`: each case exits with status 1, says what and where, and serves nothing.

Every case breaks one file of a copy of tests/host/apps/minimal_app. The runs are started together
(a module fixture) so the module stays fast; each test then checks one outcome. The finer worker and
configuration rules are unit tests (test_indexing.py, test_config.py). Host-side function
errors (docs §2.7) are different: only the function in error is dropped (tests/host/apps/partial_app).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from host_support import APPS, copy_app
from support import HostProcess

HEADER = "import azure.functions as func\n\napp = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"


@dataclass
class Case:
    breaks: Callable[[Path], object]   # changes the copied app
    expected: list[str]                # each must appear on stderr
    env: dict[str, str] | None = None


def write(name: str, content: object) -> Callable[[Path], object]:
    text = content if isinstance(content, str) else json.dumps(content)
    return lambda app: (app / name).write_text(text)


def script(body: str, header: str = HEADER) -> Callable[[Path], object]:
    return write("function_app.py", header + body)


def remove(name: str) -> Callable[[Path], object]:
    return lambda app: (app / name).unlink()


SETTINGS_VALUES = {"Values": {"FUNCTIONS_WORKER_RUNTIME": "python"}}
UNIQUE = ("Function dup does not have a unique function name. Please change @app.function_name() or the "
          "function method name to be unique.")
CASES = {
    "host_json_missing": Case(remove("host.json"), ["host.json: not found"]),
    "host_json_not_json": Case(write("host.json", "{\"version\": "),
                               ["host.json: Unable to parse host configuration file '{app}/host.json'."]),
    "host_json_no_version": Case(write("host.json", {"logging": {}}), [
        "host.json: The host.json file is missing the required 'version' property. See "
        "https://aka.ms/functions-hostjson for steps to migrate the configuration file."]),
    "host_json_bad_version": Case(write("host.json", {"version": "3.0"}), [
        "host.json: version '3.0' is an invalid value for host.json 'version' property. We recommend you set "
        "the 'version' property to '2.0'."]),
    "settings_not_json": Case(write("local.settings.json", "{\"Values\": {"), [
        "local.settings.json: Failed to read app settings file at '{app}/local.settings.json'. Ensure it is a "
        "valid JSON file."]),
    "settings_encrypted": Case(write("local.settings.json", {"IsEncrypted": True, **SETTINGS_VALUES}), [
        "Failed to decrypt settings. Encrypted settings only be edited through 'func settings add'."]),
    "import_error": Case(script("def boom():\n    raise RuntimeError('broken at import')\n\nboom()\n"), [
        "Worker failed to index functions", "Result: Failure", "Exception: RuntimeError: broken at import",
        "Stack: Traceback (most recent call last):", 'function_app.py", line 5, in boom']),
    "syntax_error": Case(script("def broken(:\n    pass\n"), ["Exception: SyntaxError: ", "function_app.py"]),
    "missing_module": Case(script("import not_installed_xyz\n"), [
        "Exception: ModuleNotFoundError: No module named 'not_installed_xyz'. Cannot find module. Please check "
        "the requirements.txt file for the missing module. For more info, please refer the troubleshooting "
        "guide: https://aka.ms/functions-modulenotfound. Current sys.path: ["]),
    "no_app": Case(script("", header="import azure.functions as func\n"), [
        "Exception: ValueError: Could not find top level function app instances in function_app.py."]),
    "two_apps": Case(script("other = func.FunctionApp()\n"), [
        "Exception: ValueError: More than one FunctionApp or other top level function app instances are "
        "defined."]),
    "duplicate_names": Case(script(
        "@app.route(route='a')\ndef dup(req): return 'a'\n\n"
        "@app.function_name('dup')\n@app.route(route='b')\ndef other(req): return 'b'\n"),
        [f"Exception: ValueError: {UNIQUE}"]),
    "parameter_without_binding": Case(script("@app.route(route='a')\ndef f(req, other): return 'a'\n"), [
        "Exception: FunctionLoadError: cannot load the f function: the following parameters are declared in "
        "Python but not in function.json: {'other'}"]),
    "wrong_trigger_annotation": Case(script("@app.route(route='a')\ndef f(req: func.QueueMessage): pass\n"), [
        "cannot load the f function: 'req' binding type \"httpTrigger\" and dataType \"None\" in function.json "
        "do not match the corresponding function parameter's Python type annotation \"QueueMessage\""]),
    "bad_script_name": Case(lambda app: None, ["Exception: ValueError: Invalid file name: bad name.py"],
                            env={"PYTHON_SCRIPT_FILE_NAME": "bad name.py"}),
}


def run_case(case: Case, app: Path) -> subprocess.CompletedProcess[str]:
    case.breaks(app)
    command = [sys.executable, "-m", "funcemu", "start", "--app", str(app), "--port", "0"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=app,
                          env={**os.environ, **(case.env or {})})


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    apps = {name: copy_app("minimal_app", tmp_path_factory.mktemp(name)) for name in CASES}
    with ThreadPoolExecutor(4) as pool:
        runs = {name: pool.submit(run_case, CASES[name], apps[name]) for name in CASES}
        return {name: (apps[name], run.result()) for name, run in runs.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_1_with_a_clear_message_and_serves_nothing(
        outcomes: dict[str, tuple[Path, subprocess.CompletedProcess[str]]], name: str) -> None:
    app, run = outcomes[name]
    assert run.returncode == 1, run.stdout + run.stderr
    for text in CASES[name].expected:
        assert text.replace("{app}", str(app)) in run.stderr, run.stderr
    assert "Listening on" not in run.stdout and "Functions:" not in run.stdout


def test_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    app = copy_app("minimal_app", tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "funcemu", "start", "--app", str(app), "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [f"Port {port} is unavailable. Close the process using that port, or "
                                       "specify another port using --port [-p]."]
    assert "Listening on" not in run.stdout


def test_no_app_folder_found(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "funcemu", "start", "--app", str(tmp_path / "absent")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "absent" in run.stderr and "not found" in run.stderr


def test_a_missing_local_settings_file_is_fine(tmp_path: Path) -> None:
    app = copy_app("minimal_app", tmp_path)
    (app / "local.settings.json").unlink()
    with HostProcess(app) as running:
        assert running.call("GET", "/api/hello").text == "hello"


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    with HostProcess(APPS / "partial_app") as running:
        yield running


@pytest.mark.parametrize("name, error", [
    ("_hidden", "'_hidden' is not a valid function name."),
    ("fine_again", "The route specified conflicts with the route defined by function 'fine'."),
    ("from_service_bus", "The binding type 'serviceBusTrigger' of binding 'msg' is not supported by funcemu yet"),
    ("reserved", "The specified route conflicts with one or more built in routes."),
    ("bad_template", "route template 'items/{id:int:bogus}': constraint 'bogus' on parameter 'id': 'bogus' is "
                     "not a known constraint"),
])
def test_a_function_in_error_is_dropped_and_reported(host: HostProcess, name: str, error: str) -> None:
    logged = host.wait_for_log(rf"The '{name}' function is in error: (.*)$").group(1)
    assert logged.startswith(error)
    assert not any(line.startswith(f"\t{name}:") for line in host.lines)
    assert any(e.startswith(f"{name}: {error}") for e in host.call("GET", "/admin/host/status").json()["errors"])
    assert host.call("GET", f"/admin/functions/{name}/status").json() == {"errors": [logged]}


def test_the_other_functions_are_served(host: HostProcess) -> None:
    assert host.call("GET", "/api/fine").text == "fine"
    assert [line for line in host.lines if line.startswith("\t")] == [
        "\tfine:  http://localhost:" + host.url.rsplit(":", 1)[1] + "/api/fine"]
    for path in ("/api/hidden", "/api/runtime/mine", "/api/items/1"):
        assert host.call("GET", path).status == 404
