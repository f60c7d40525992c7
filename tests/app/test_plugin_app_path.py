"""The plugin's default app folder: the rootdir or its nearest parent with function_app.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from funcemu.testing.plugin import find_app_folder

TINY_APP = """
import azure.durable_functions as df
import azure.functions as func
app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

@app.orchestration_trigger(context_name="context")
def noop(context):
    return "done"

@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hi")
"""

HOST_JSON = """{"version": "2.0", "extensionBundle":
  {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}}"""

INNER_TESTS = """
def test_one(funcemu):
    assert funcemu.get("/api/hello").text == "hi"

def test_two(funcemu):
    assert funcemu.get("/api/hello").status == 200
"""


def run_inner_pytest(cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--funcemu-storage", "memory",
         "test_inner.py"],
        cwd=cwd, capture_output=True, text=True, timeout=90,
    )
    return done.stdout + done.stderr


def test_find_app_folder_walks_up_to_the_repository_root(tmp_path: Path) -> None:
    tests = tmp_path / "repo" / "app" / "tests"
    tests.mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()
    assert find_app_folder(tests) is None
    (tmp_path / "function_app.py").write_text("")  # above the repository root: not searched
    assert find_app_folder(tests) is None
    (tmp_path / "repo" / "function_app.py").write_text("")  # the repository root itself is searched
    assert find_app_folder(tests) == tmp_path / "repo"
    (tmp_path / "repo" / "app" / "function_app.py").write_text("")
    assert find_app_folder(tests) == tmp_path / "repo" / "app"
    assert find_app_folder(tmp_path / "repo" / "app") == tmp_path / "repo" / "app"


def test_tests_in_a_subfolder_find_the_app_above(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "function_app.py").write_text(textwrap.dedent(TINY_APP))
    (tmp_path / "host.json").write_text(HOST_JSON)
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_inner.py").write_text(INNER_TESTS)
    output = run_inner_pytest(tests)
    assert "2 passed" in output, output


def test_no_app_is_reported_once(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    output = run_inner_pytest(tmp_path)
    assert "2 errors" in output or "2 failed" in output, output
    details = output.split("short test summary info")[0]  # the summary repeats each error (in full under CI)
    assert details.count("(up to the repository root): pass --funcemu-app") == 1, output
    assert "see the first test that used it" in output, output


HTTP_ONLY_APP = """
import azure.functions as func
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hi")
"""


def test_an_app_without_durable_functions_uses_the_funcemu_fixture(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "function_app.py").write_text(textwrap.dedent(HTTP_ONLY_APP))
    (tmp_path / "host.json").write_text('{"version": "2.0"}')
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    output = run_inner_pytest(tmp_path)
    assert "2 passed" in output, output
