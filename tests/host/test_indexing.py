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


@pytest.mark.parametrize("body, message", [
    ("@app.route(route='a')\n@app.timer_trigger(schedule='0 * * * * *', arg_name='t')\ndef both(req, t): pass\n",
     "ValueError: A trigger was already registered to this function."),
    ("@app.route(route='a', binding_arg_name='out')\ndef f(req): pass\n",
     "the following parameters are declared in function.json but not in Python: {'out'}"),
    ("@app.route(route='a')\ndef f(req, context: str): return 'a'\n",
     'the "context" parameter is expected to be of type azure.functions.Context, got <class \'str\'>'),
    ("@app.route(route='a')\ndef f(req: func.Out[func.HttpRequest]): return 'a'\n",
     'binding req is declared to have the "in" direction in function.json, but its annotation is '
     "azure.functions.Out in Python"),
    ("@app.route(route='a', binding_arg_name='res')\ndef f(req, res: func.HttpResponse): pass\n",
     'binding res is declared to have the "out" direction, but its annotation in Python is not a subclass of '
     "azure.functions.Out"),
    ("@app.route(route='a', binding_arg_name='res')\ndef f(req, res: func.Out): pass\n",
     "binding res has invalid Out annotation <class 'azure.functions._abc.Out'>"),
    ("@app.route(route='a')\ndef f(req: 'int | None'): pass\n", "binding req has invalid non-type annotation"),
    ("@app.route(route='a')\ndef f(req: func.QueueMessage): pass\n",
     "'req' binding type \"httpTrigger\" and dataType \"None\" in function.json do not match the corresponding "
     "function parameter's Python type annotation \"QueueMessage\""),
    ("@app.route(route='a', binding_arg_name='res')\ndef f(req, res: func.Out[int]): pass\n",
     "'res' binding type \"http\" and dataType \"None\" in function.json do not match the corresponding function "
     "parameter's Python type annotation \"int\""),
    ("@app.route(route='a')\ndef f(req) -> dict: return {}\n",
     'Python return annotation "dict" does not match binding type "http"'),
    ("@app.route(route='a')\ndef f(req) -> func.Out[str]: pass\n", "return annotation should not be azure.functions.Out"),
    ("@app.route(route='a')\ndef f(req) -> 'int | None': pass\n", "has invalid non-type return annotation"),
])
def test_worker_signature_rules(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(AppLoadError) as info:
        load_app(app_dir(tmp_path, "app = func.FunctionApp()\n" + body))
    assert message in str(info.value)


def test_annotations_the_worker_accepts(tmp_path: Path) -> None:
    indexed = load_app(app_dir(tmp_path, """
        app = func.FunctionApp()

        @app.route(route="a", binding_arg_name="res")
        def typed(req: func.HttpRequest, res: func.Out[func.HttpResponse], context: func.Context) -> None:
            pass

        @app.route(route="b")
        def as_text(req: str, context) -> str:
            return "b"

        @app.timer_trigger(schedule="0 * * * * *", arg_name="t", use_monitor=False)
        def tick(t: func.TimerRequest) -> None:
            pass
    """))
    assert [(f.name, f.needs_context, f.takes_return) for f in indexed.functions] == [
        ("as_text", True, True), ("tick", False, False), ("typed", True, False)]


def test_missing_script_is_named(tmp_path: Path) -> None:
    with pytest.raises(AppLoadError, match="function_app.py not found in"):
        load_app(tmp_path)


def test_import_error_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(AppLoadError) as info:
        load_app(app_dir(tmp_path, "def broken():\n    return 1 / 0\nbroken()\n"))
    text = str(info.value)
    assert "ZeroDivisionError: division by zero" in text and "Stack: Traceback" in text and "function_app.py" in text
    assert "importlib" not in text and "funcemu" not in text  # the stack starts in the user's code


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

        @app.route(route="administration")
        def admin_prefix(req): return "x"

        @app.route(route="items", methods=["POST"])
        def c_items(req): return "x"

        @app.route(route="bad/{id:nope}")
        def bad_route(req): return "x"
    """))
    assert [f.name for f in indexed.functions] == ["a_items", "fine"]
    assert indexed.errors == {
        "_bad": "'_bad' is not a valid function name.",
        "admin_prefix": "The specified route conflicts with one or more built in routes.",
        "b_items": "The route specified conflicts with the route defined by function 'a_items'.",
        "bad_route": "route template 'bad/{id:nope}': constraint 'nope' on parameter 'id': 'nope' is not a known "
                     "constraint",
        "c_items": "The route specified conflicts with the route defined by function 'a_items'.",
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
