"""Import function_app.py and index its FunctionApp the way the Python worker and the host do.

Worker-side errors (import failure, no or several apps, duplicate names, parameter/binding mismatch)
fail the whole app, as in the worker; host-side errors (bad function or binding names, route
conflicts) drop only the function in error and are reported, as in the host.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import importlib.util
import inspect
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from funcemu.errors import FuncemuError
from funcemu.http.routes import RouteTemplate, RouteTemplateError
from funcemu.signature import check_signature, has_implicit_output

log = logging.getLogger("funcemu.app")

SCRIPT_NAME_RULE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_\-]*\.py$")
FUNCTION_NAME_RULE = re.compile(r"^[a-z][a-z0-9_\-]{0,127}$", re.IGNORECASE)
BINDING_NAME_RULE = re.compile(r"^(?!.*__)([a-zA-Z_][a-zA-Z0-9_]{0,127}|\$return)$")
DURABLE_TRIGGERS = {"orchestrationTrigger": "orchestration", "activityTrigger": "activity",
                    "entityTrigger": "entityName"}
# Binding types funcemu can serve; anything else is refused at startup, naming function and binding.
SUPPORTED_BINDINGS = {
    "httpTrigger", "http", "orchestrationTrigger", "activityTrigger", "entityTrigger", "durableClient",
    "timerTrigger", "queueTrigger", "blobTrigger", "queue", "blob", "table",
}
IMPORT_HINT = ("Cannot find module. Please check the requirements.txt file for the missing module. For more "
               "info, please refer the troubleshooting guide: https://aka.ms/functions-modulenotfound. "
               "Current sys.path: {path}")


# Frames of funcemu and of the machinery between it and the user's code, left out of tracebacks.
_MACHINERY = (f"{Path(__file__).parent}{os.sep}", "<frozen importlib",
              *(f"{Path(module.__file__ or '').parent}{os.sep}" for module in (asyncio, concurrent.futures, importlib)))


def user_traceback(exc: BaseException) -> str:
    """The formatted exception, its stack starting at the first frame of the user's code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_MACHINERY):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class AppLoadError(FuncemuError):
    """function_app.py could not be indexed; the message carries the worker's text and the traceback."""

    def __init__(self, script: Path, exc: BaseException, with_traceback: bool = True) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ImportError) and not isinstance(exc, FuncemuError):
            text += ". " + IMPORT_HINT.format(path=sys.path)
        trace = user_traceback(exc) if with_traceback else ""
        super().__init__(f"Worker failed to index functions in {script}\nResult: Failure\n"
                         f"Exception: {text}" + (f"\nStack: {trace}" if trace else ""))


TRUE_LIKE = {"1", "true", "t", "yes", "y"}


def is_disabled(name: str, environ: Any = None) -> bool:
    """App setting `AzureWebJobs.<name>.Disabled` (or `AzureWebJobs_<name>_Disabled`) is true-like."""
    environ = os.environ if environ is None else environ
    for key in (f"AzureWebJobs.{name}.Disabled", f"AzureWebJobs_{name}_Disabled"):
        if str(environ.get(key, "")).strip().lower() in TRUE_LIKE:
            return True
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """`@app.retry(...)` as the worker reports it to the host (`RpcRetryOptions`); intervals in seconds."""

    strategy: str              # "fixed_delay" or "exponential_backoff"
    max_retry_count: int       # -1: no limit
    delay_interval: float = 0.0
    minimum_interval: float = 0.0
    maximum_interval: float = 0.0


@dataclass
class FunctionSpec:
    """One indexed function: its bindings as the host sees them and how to call it."""

    name: str
    function: func.FunctionRegister | Any      # azure.functions decorators Function
    callable: Callable[..., Any]
    bindings: list[dict[str, Any]]
    trigger: dict[str, Any]
    directory: str
    is_async: bool
    needs_context: bool
    takes_return: bool = True  # a `$return` binding or one with an implicit output (the worker's has_return)
    retry: RetryPolicy | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def disabled(self) -> bool:
        return is_disabled(self.name)

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    @property
    def is_http(self) -> bool:
        return self.trigger_type == "httpTrigger"

    @property
    def route(self) -> str:
        return str(self.trigger.get("route") or self.name)

    @property
    def methods(self) -> list[str] | None:
        methods = self.trigger.get("methods")
        return [str(m).upper() for m in methods] if methods else None

    @property
    def auth_level(self) -> str:
        return str(self.trigger.get("authLevel") or "FUNCTION").lower()

    @property
    def durable_name(self) -> str:
        """The name a durable trigger registers (`orchestration=`/`activity=`/`entityName=` or the function name)."""
        key = DURABLE_TRIGGERS.get(self.trigger_type)
        return str(self.trigger.get(key) or self.name) if key else self.name

    @property
    def input_bindings(self) -> list[dict[str, Any]]:
        return [b for b in self.bindings if b.get("direction", "IN").upper() == "IN"]

    @property
    def output_bindings(self) -> list[dict[str, Any]]:
        return [b for b in self.bindings if b.get("direction", "").upper() == "OUT"]

    def binding(self, name: str) -> dict[str, Any] | None:
        return next((b for b in self.bindings if b["name"] == name), None)


@dataclass
class IndexedApp:
    script: Path
    app: Any
    functions: list[FunctionSpec]          # loaded functions, in host order (name, case-insensitive)
    errors: dict[str, str]                 # function name -> host-side error (function not loaded)

    def get(self, name: str) -> FunctionSpec | None:
        return next((f for f in self.functions if f.name.lower() == name.lower()), None)


def load_app(app_root: Path, script_file: str = "function_app.py",
             allow: list[str] | None = None) -> IndexedApp:
    """Import the script, find the one app, index and validate every function."""
    script = app_root / script_file
    if not SCRIPT_NAME_RULE.match(script_file):
        raise AppLoadError(script, ValueError(f"Invalid file name: {script_file}"), with_traceback=False)
    if not script.is_file():
        raise AppLoadError(script, FileNotFoundError(
            f"{script_file} not found in {app_root}: funcemu serves Python v2 programming model apps "
            "(set PYTHON_SCRIPT_FILE_NAME for another script name)"), with_traceback=False)
    module = _import_script(app_root, script)
    app = _find_app(module, script)
    try:
        indexed = app.get_functions()
        specs = [_spec(fn) for fn in indexed]
    except Exception as exc:
        raise AppLoadError(script, exc) from None
    return _host_validate(script, app, specs, allow)


_added_roots: list[str] = []  # app roots this process appended to sys.path


def _add_to_sys_path(root: str) -> None:
    """Append the app root, as the worker (`sys.path.append`, §1.2): installed packages come first.

    An app root indexed earlier in this process is taken off again, so it cannot shadow this one;
    a root already on sys.path (the start directory of `python -m`) stays where it is.
    """
    for old in _added_roots:
        if old != root and old in sys.path:
            sys.path.remove(old)
    _added_roots[:] = [root]
    if root not in sys.path:
        sys.path.append(root)


def _import_script(app_root: Path, script: Path) -> Any:
    _add_to_sys_path(str(app_root))
    name = script.stem
    sys.modules.pop(name, None)
    try:
        found = importlib.util.find_spec(name)
        if found is None or not found.origin or Path(found.origin).resolve() == script.resolve():
            return importlib.import_module(name)
        # a module of that name earlier on sys.path (the directory `python -m funcemu` started in, say):
        # the worker has no such entry, so the app's own script is imported
        return _import_file(name, script)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and not isinstance(exc, SystemExit):
            raise
        raise AppLoadError(script, exc) from None


def _import_file(name: str, script: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _find_app(module: Any, script: Path) -> Any:
    apps = [getattr(module, attr) for attr in module.__dir__()
            if isinstance(getattr(module, attr, None), func.FunctionRegister)]
    if not apps:
        raise AppLoadError(script, ValueError(
            f"Could not find top level function app instances in {script.name}."), with_traceback=False)
    if len(apps) > 1:
        raise AppLoadError(script, ValueError(
            f"More than one {type(apps[0]).__name__} or other top level function app instances are defined."),
            with_traceback=False)
    return apps[0]


def _spec(fn: Any) -> FunctionSpec:
    name = fn.get_function_name()
    bindings = [json.loads(raw) for raw in fn.get_raw_bindings()]
    trigger = next(b for b in bindings if str(b.get("type", "")).endswith("Trigger"))
    user = fn.get_user_function()
    target = inspect.unwrap(user)
    spec = FunctionSpec(
        name=name, function=fn, callable=user, bindings=bindings, trigger=trigger,
        directory=_directory(target), is_async=inspect.iscoroutinefunction(user),
        needs_context=_needs_context(user, bindings),
        takes_return=any(b["name"] == "$return" or has_implicit_output(b["type"]) for b in bindings),
        retry=retry_policy(fn))
    check_signature(name, fn)
    _warn_async_orchestrator(name, trigger, user)
    return spec


def _warn_async_orchestrator(name: str, trigger: dict[str, Any], user: Callable[..., Any]) -> None:
    """An `async def` orchestrator indexes fine (the real host says nothing) but fails on its first run."""
    if trigger.get("type") != "orchestrationTrigger":
        return
    target = getattr(user, "orchestrator_function", user)  # set by the SDK's Orchestrator.create
    target = inspect.unwrap(target)
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        log.warning("Orchestrator function '%s' is an async def function; Durable Functions orchestrators for "
                    "Python must be generator functions (def with yield) — it will fail when it runs.", name)


def retry_policy(fn: Any) -> RetryPolicy | None:
    """The worker's `build_retry_protos`: `fixed_delay`, anything else is exponential backoff; a count
    or interval it cannot parse fails the indexing (§2.4)."""
    try:
        settings = fn.get_settings_dict("retry_policy")
    except AttributeError as exc:  # as the worker: a warning, no retry options
        log.warning("AttributeError while loading retry policy. %s", exc)
        return None
    if not settings:
        return None
    count = int(settings.get("max_retry_count"))
    if settings.get("strategy") == "fixed_delay":
        return RetryPolicy("fixed_delay", count, delay_interval=_interval(settings.get("delay_interval")))
    return RetryPolicy("exponential_backoff", count, minimum_interval=_interval(settings.get("minimum_interval")),
                       maximum_interval=_interval(settings.get("maximum_interval")))


def _interval(text: Any) -> float:
    """The worker's `convert_to_seconds`: `time.strptime(text, "%H:%M:%S")`, whole seconds."""
    parsed = time.strptime(text, "%H:%M:%S")
    return float(parsed.tm_hour * 3600 + parsed.tm_min * 60 + parsed.tm_sec)


def _directory(target: Callable[..., Any]) -> str:
    try:
        return str(Path(inspect.getfile(target)).parent)
    except (TypeError, OSError):
        return ""


def _needs_context(user: Callable[..., Any], bindings: list[dict[str, Any]]) -> bool:
    params = inspect.signature(user).parameters
    return "context" in params and not any(b["name"] == "context" for b in bindings)


def _host_validate(script: Path, app: Any, specs: list[FunctionSpec], allow: list[str] | None) -> IndexedApp:
    """Per-function host checks; the functions in error are dropped, the others load."""
    errors: dict[str, str] = {}
    loaded: list[FunctionSpec] = []
    allowed = {name.lower() for name in allow} if allow else None
    for spec in sorted(specs, key=lambda s: s.name.lower()):
        if allowed is not None and spec.name.lower() not in allowed:
            continue
        problem = _host_problem(spec, loaded)
        if problem:
            errors[spec.name] = problem
            log.error("The '%s' function is in error: %s", spec.name, problem)
        else:
            loaded.append(spec)
    return IndexedApp(script=script, app=app, functions=loaded, errors=errors)


def _host_problem(spec: FunctionSpec, loaded: list[FunctionSpec]) -> str | None:
    if not FUNCTION_NAME_RULE.match(spec.name) or spec.name.lower() == "host":
        return f"'{spec.name}' is not a valid function name."
    seen: set[str] = set()
    for binding in spec.bindings:
        name = str(binding.get("name", ""))
        if not BINDING_NAME_RULE.match(name):
            return f"The binding name {name} is invalid. Please assign a valid name to the binding."
        if name.lower() in seen:
            return f"Multiple bindings with name '{name}' discovered. Binding names must be unique."
        seen.add(name.lower())
        if binding.get("type") not in SUPPORTED_BINDINGS:
            return (f"The binding type '{binding.get('type')}' of binding '{name}' is not supported by funcemu "
                    f"yet (supported: {', '.join(sorted(SUPPORTED_BINDINGS))}).")
    return _route_problem(spec, loaded) if spec.is_http else None


def _route_problem(spec: FunctionSpec, loaded: list[FunctionSpec]) -> str | None:
    route = spec.route.strip("/").lower()
    if route.startswith("admin") or route.startswith("runtime"):
        return "The specified route conflicts with one or more built in routes."
    try:
        RouteTemplate(spec.route)
    except RouteTemplateError as exc:
        return str(exc)
    for other in loaded:
        if other.is_http and other.route.strip("/").lower() == route and _methods_overlap(spec, other):
            return f"The route specified conflicts with the route defined by function '{other.name}'."
    return None


def _methods_overlap(a: FunctionSpec, b: FunctionSpec) -> bool:
    if not a.methods or not b.methods:
        return True
    return bool(set(a.methods) & set(b.methods))
