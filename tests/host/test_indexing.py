"""Indexing function_app.py like the worker and the host (functions-host.md §2)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from funcemu.app import AppLoadError, load_app

HEADER = "import azure.functions as func\n"


def app_dir(tmp_path: Path, body: str, name: str = "function_app.py") -> Path:
    (tmp_path / name).write_text(HEADER + textwrap.dedent(body))
    return tmp_path


def test_indexes_in_host_order_with_defaults(tmp_path: Path) -> None:
    indexed = load_app(app_dir(tmp_path, """
        app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

        @app.route(route="zeta", methods=["GET"])
        def Zeta(req): return func.HttpResponse("z")

        @app.route()
        def alpha(req: func.HttpRequest, context: func.Context) -> func.HttpResponse: return "a"
    """))
    assert [f.name for f in indexed.functions] == ["alpha", "Zeta"]
    alpha = indexed.functions[0]
    assert (alpha.route, alpha.methods, alpha.auth_level, alpha.needs_context) == ("alpha", None, "anonymous", True)
    assert alpha.directory == str(tmp_path)


def test_blueprints_are_registered(tmp_path: Path) -> None:
    indexed = load_app(app_dir(tmp_path, """
        bp = func.Blueprint()

        @bp.route(route="bp")
        def from_bp(req): return "x"

        app = func.FunctionApp()
        app.register_functions(bp)
    """))
    assert [f.name for f in indexed.functions] == ["from_bp"]


@pytest.mark.parametrize("body, message", [
    ("x = 1\n", "ValueError: Could not find top level function app instances in function_app.py."),
    ("app = func.FunctionApp()\napp2 = app\n",
     "ValueError: More than one FunctionApp or other top level function app instances are defined."),
    ("import not_a_module_xyz\n", "ModuleNotFoundError: No module named 'not_a_module_xyz'. Cannot find module."),
    ("raise RuntimeError('broken at import')\n", "RuntimeError: broken at import"),
    ("""
app = func.FunctionApp()
@app.route(route="a")
def same(req): return "a"
@app.function_name("same")
@app.route(route="b")
def other(req): return "b"
""", "Function same does not have a unique function name."),
    ("""
app = func.FunctionApp()
@app.route(route="a")
def f(req, other): return "a"
""", "cannot load the f function: the following parameters are declared in Python but not in function.json: "
     "{'other'}"),
])
def test_worker_errors_fail_the_app_with_the_real_message(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(AppLoadError) as info:
        load_app(app_dir(tmp_path, body))
    assert message in str(info.value)
    assert "Worker failed to index functions" in str(info.value)


def test_import_error_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(AppLoadError) as info:
        load_app(app_dir(tmp_path, "def broken():\n    return 1 / 0\nbroken()\n"))
    text = str(info.value)
    assert "ZeroDivisionError: division by zero" in text and "Stack: Traceback" in text and "function_app.py" in text


def test_host_rules_drop_only_the_function_in_error(tmp_path: Path) -> None:
    indexed = load_app(app_dir(tmp_path, """
        app = func.FunctionApp()

        @app.route(route="admin/x")
        def reserved(req): return "x"

        @app.route(route="items")
        def a_items(req): return "x"

        @app.route(route="Items/")
        def b_items(req): return "x"

        @app.function_name("_bad")
        @app.route(route="bad")
        def bad(req): return "x"

        @app.route(route="fine")
        def fine(req): return "x"
    """))
    assert [f.name for f in indexed.functions] == ["a_items", "fine"]
    assert indexed.errors == {
        "_bad": "'_bad' is not a valid function name.",
        "b_items": "The route specified conflicts with the route defined by function 'a_items'.",
        "reserved": "The specified route conflicts with one or more built in routes.",
    }


def test_unsupported_binding_is_named(tmp_path: Path) -> None:
    indexed = load_app(app_dir(tmp_path, """
        app = func.FunctionApp()

        @app.service_bus_queue_trigger(arg_name="msg", queue_name="q", connection="SB")
        def sb(msg): pass
    """))
    assert indexed.functions == []
    assert "binding type 'serviceBusTrigger' of binding 'msg' is not supported" in indexed.errors["sb"]


def test_functions_allow_list(tmp_path: Path) -> None:
    indexed = load_app(app_dir(tmp_path, """
        app = func.FunctionApp()

        @app.route(route="a")
        def a(req): return "a"

        @app.route(route="b")
        def b(req): return "b"
    """), allow=["B"])
    assert [f.name for f in indexed.functions] == ["b"]


def test_script_file_name_is_validated(tmp_path: Path) -> None:
    with pytest.raises(AppLoadError, match="Invalid file name: bad name.py"):
        load_app(tmp_path, "bad name.py")
