"""Warn, once per orchestrator, when orchestrator code calls a non-deterministic API while replaying.

`datetime.now()`, `uuid.uuid4()`, `random.random()` and their kin return something new on every replay,
so an orchestrator that decides from them can schedule different work in each episode (the host then
fails it as non-deterministic) or quietly compute different values. The real host says nothing about
such calls; funcemu logs one warning per orchestrator and never changes what the calls return.

How, in two steps, so that clean orchestrators cost nothing:
1. `suspect(handler)` reads the orchestrator's code once (its code objects, and the functions and
   classes of the app that it names) for names of the APIs below. An orchestrator that never names
   any of them is never watched.
2. For a suspect, `watch(...)` installs a profile function (`sys.setprofile`, this thread only)
   around one handler call of a replay episode. It reacts only to calls of those APIs made *directly*
   from app code (not the standard library, installed packages or funcemu: dateutil's own
   `datetime.now()`, or `logging`'s `time.time()`, are not the app's decisions) while the SDK context
   says `is_replaying`. After its warning an orchestrator is not watched again.
Limits: an API reached through an object the scan cannot see (a value passed in, a library wrapper)
is not reported, and the profiler replaces nothing but chains to one already installed.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
import site
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import CodeType, FrameType, FunctionType
from typing import Any

from azure.durable_functions.models.DurableOrchestrationContext import DurableOrchestrationContext
from azure.durable_functions.models.TaskOrchestrationExecutor import TaskOrchestrationExecutor

log = logging.getLogger("funcemu.durable")

_CLOCK_HINT = "use context.current_utc_datetime instead"
_UUID_HINT = "use context.new_uuid() instead"
_RANDOM_HINT = "draw random values in an activity, or pass them in as input"

# C functions: the profiler sees them as `c_call` events whose argument compares equal to these.
_C_APIS: dict[Any, tuple[str, str]] = {
    datetime.datetime.now: ("datetime.now()", _CLOCK_HINT),
    datetime.datetime.utcnow: ("datetime.utcnow()", _CLOCK_HINT),
    datetime.datetime.today: ("datetime.today()", _CLOCK_HINT),
    datetime.date.today: ("date.today()", _CLOCK_HINT),
    time.time: ("time.time()", _CLOCK_HINT),
    time.time_ns: ("time.time_ns()", _CLOCK_HINT),
    random.random: ("random.random()", _RANDOM_HINT),
    random.getrandbits: ("random.getrandbits()", _RANDOM_HINT),
    os.urandom: ("os.urandom()", _RANDOM_HINT),
}
# Python functions: `call` events whose code object is one of these.
_PY_APIS: dict[CodeType, tuple[str, str]] = {
    uuid.uuid1.__code__: ("uuid.uuid1()", _UUID_HINT),
    uuid.uuid4.__code__: ("uuid.uuid4()", _UUID_HINT),
}
for _name in ("randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform", "gauss",
              "normalvariate", "triangular", "randbytes"):
    _method = getattr(random.Random, _name, None)
    if _method is not None:
        _PY_APIS[_method.__code__] = (f"random.{_name}()", _RANDOM_HINT)

_SUSPECT_NAMES = frozenset({"now", "utcnow", "today", "time", "time_ns", "urandom", "uuid1", "uuid4",
                            "random", "getrandbits", *(code.co_name for code in _PY_APIS)})

_warned: set[str] = set()
_suspects: dict[Any, bool] = {}


def forget_warnings() -> None:
    """Warn again about every orchestrator (for tests)."""
    _warned.clear()


_NOT_WATCHING: AbstractContextManager[None] = nullcontext()  # stateless, so one serves every episode


def watch(orchestrator: str, handler: Callable[..., Any], *, replaying: bool) -> AbstractContextManager[None]:
    """Around one handler call: warn if `orchestrator` calls a non-deterministic API while replaying.
    `replaying` is whether the episode has history from earlier episodes (else nothing replays)."""
    if not replaying or orchestrator.lower() in _warned or not suspect(handler) or not _sampled(orchestrator):
        return _NOT_WATCHING
    return _watching(orchestrator)


@contextmanager
def _watching(orchestrator: str) -> Iterator[None]:
    previous = sys.getprofile()
    sys.setprofile(_Watcher(orchestrator, previous))
    try:
        yield
    finally:
        sys.setprofile(previous)


# Watching costs (a profiler hook slows an episode about 4x), so a suspect orchestrator is watched on
# its first WATCH_FIRST replay episodes and then on one in WATCH_EVERY: a call made on every replay is
# still caught at once, and an orchestrator that merely names `time` stops paying after a while.
WATCH_FIRST = 20
WATCH_EVERY = 50
_episodes: dict[str, int] = {}


def _sampled(orchestrator: str) -> bool:
    count = _episodes[orchestrator] = _episodes.get(orchestrator, 0) + 1
    return count <= WATCH_FIRST or count % WATCH_EVERY == 0


def suspect(handler: Callable[..., Any]) -> bool:
    """Whether the orchestrator behind the SDK handler names one of the APIs (cached per handler)."""
    user = getattr(handler, "orchestrator_function", None)  # set by the SDK's Orchestrator.create
    if not isinstance(user, FunctionType):
        return True  # cannot see the code: watch it
    known = _suspects.get(user)
    if known is None:
        known = _suspects[user] = _names_an_api(user)
    return known


def _names_an_api(function: FunctionType) -> bool:
    pending: list[tuple[CodeType, dict[str, Any]]] = [(function.__code__, function.__globals__)]
    seen: set[CodeType] = set()
    while pending:
        code, names = pending.pop()
        if code in seen:
            continue
        seen.add(code)
        if _SUSPECT_NAMES.intersection(code.co_names):
            return True
        pending.extend((const, names) for const in code.co_consts if isinstance(const, CodeType))
        for name in code.co_names:
            value = names.get(name)
            if _is_api(value):
                return True
            pending.extend(_app_code_of(value))
    return False


def _is_api(value: Any) -> bool:
    """An API bound under another name (`from uuid import uuid4 as new_id`)."""
    try:
        if value in _C_APIS:
            return True
    except TypeError:
        return False
    code = getattr(getattr(value, "__func__", value), "__code__", None)
    return code in _PY_APIS


def _app_code_of(value: Any) -> list[tuple[CodeType, dict[str, Any]]]:
    """The code of an app function, or of the methods of an app class, to scan as well."""
    members = list(vars(value).values()) if isinstance(value, type) else [value]
    found = []
    for member in members:
        member = getattr(member, "__func__", member)  # staticmethod / classmethod
        if isinstance(member, FunctionType) and is_app_code(member.__code__.co_filename):
            found.append((member.__code__, member.__globals__))
    return found


class _Watcher:
    """The profile function; kept tiny because it runs on every call inside the handler."""

    def __init__(self, orchestrator: str, previous: Callable[..., Any] | None) -> None:
        self.orchestrator, self.previous = orchestrator, previous

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if self.previous is not None:
            self.previous(frame, event, arg)
        if event == "c_call":
            try:
                api = _C_APIS.get(arg)
            except TypeError:  # an unhashable callable: not one of ours
                return
            caller: FrameType | None = frame
        elif event == "call":
            api = _PY_APIS.get(frame.f_code)
            if api is not None and api[1] is _RANDOM_HINT and frame.f_locals.get("self") is not _module_random():
                return  # a random.Random of the app's own, maybe seeded deterministically
            caller = frame.f_back
        else:
            return
        if api is not None and caller is not None and is_app_code(caller.f_code.co_filename):
            self.report(api, caller)

    def report(self, api: tuple[str, str], caller: FrameType) -> None:
        if self.orchestrator.lower() in _warned or not _replaying(caller):
            return
        _warned.add(self.orchestrator.lower())
        call, hint = api
        where = f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"
        log.warning("Orchestrator '%s' called %s while replaying (%s). It returns a different value on every "
                    "replay, so whatever the orchestrator decides from it is not deterministic; %s. "
                    "(funcemu warns once per orchestrator; the call itself was not changed.)",
                    self.orchestrator, call, where, hint)


def _module_random() -> Any:
    return getattr(random, "_inst", None)


def _replaying(frame: FrameType | None) -> bool:
    """The SDK context's `is_replaying`, found in the frames that lead to the call: the orchestrator's
    own `context` argument, or the SDK executor (`self.context`) that resumed the generator."""
    depth = 0
    while frame is not None and depth < 64:
        for value in frame.f_locals.values():
            if isinstance(value, TaskOrchestrationExecutor):
                value = getattr(value, "context", None)
            if isinstance(value, DurableOrchestrationContext):
                return bool(value.is_replaying)
        frame, depth = frame.f_back, depth + 1
    return True  # no context in sight: the caller asked us to watch a replay episode


_library: tuple[str, ...] = ()
_app_files: dict[str, bool] = {}


def _library_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {paths.get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    found.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    found.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the funcemu package
    return tuple(os.path.realpath(path) + os.sep for path in found if path)


def is_app_code(filename: str) -> bool:
    """A real file outside the standard library, site-packages and funcemu (cached per file name)."""
    known = _app_files.get(filename)
    if known is None:
        global _library
        if not _library:
            _library = _library_prefixes()
        real = "" if filename.startswith("<") else os.path.realpath(filename)
        known = _app_files[filename] = bool(real) and not real.startswith(_library)
    return known
