"""Invocation the way the Python worker does it (docs §3.1-3.4, §3.11): context, Out[T], the sync thread
pool (PYTHON_THREADPOOL_THREAD_COUNT=2), async functions on the event loop, functionTimeout 00:00:01,
blueprints in a subfolder, user log records and host.json log levels.

One host of tests/host/apps/invoke_app serves the whole module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from host_support import APPS
from support import HostProcess

APP = APPS / "invoke_app"
EXECUTED = r"Executed 'Functions\.{name}' \((Succeeded|Failed), Id={id}, Duration=(\d+)ms\)"


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    with HostProcess(APP) as running:
        yield running


def test_context_attributes(host: HostProcess) -> None:
    since = len(host.lines)
    seen = host.call("GET", "/api/ctx").json()
    executing = host.wait_for_log(r"Executing 'Functions\.ctx' \(Reason='([^']*)', Id=([0-9a-f-]{36})\)",
                                  since=since)
    assert seen["is_context"] is True
    assert seen["invocation_id"] == executing.group(2) == seen["thread_local_invocation_id"]
    assert (seen["function_name"], seen["function_directory"]) == ("ctx", str(APP))
    assert seen["trace_parent"].startswith("00-") and len(seen["trace_parent"].split("-")) == 4
    assert (seen["trace_state"], seen["attributes"], seen["retry"]) == ("", {}, [0, 0, None])
    host.wait_for_log(EXECUTED.format(name="ctx", id=seen["invocation_id"]), since=since)


def test_an_unannotated_context_on_an_async_function(host: HostProcess) -> None:
    first, second = host.call("GET", "/api/actx").text, host.call("GET", "/api/actx").text
    assert len(first) == 36 and first != second


def test_blueprint_in_a_subfolder_has_its_own_function_directory(host: HostProcess) -> None:
    assert host.call("GET", "/api/bp/where").text == str(APP / "blueprints")


def test_out_of_http_response(host: HostProcess) -> None:
    reply = host.call("GET", "/api/out")
    assert (reply.status, reply.text) == (201, "set through Out")


def test_out_through_generic_trigger_and_output_bindings(host: HostProcess) -> None:
    reply = host.call("POST", "/api/generic/word", raw=b"body")
    assert (reply.status, reply.text) == (202, "generic word body")
    assert host.call("GET", "/api/generic/word").status == 404  # methods=["POST"] on the generic trigger


def test_an_out_never_set_gives_an_empty_200(host: HostProcess) -> None:
    reply = host.call("GET", "/api/outunset")
    assert (reply.status, reply.body) == (200, b"")


def test_sync_functions_share_a_pool_of_python_threadpool_thread_count_threads(host: HostProcess) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        names = list(pool.map(lambda _: host.call("GET", "/api/thread").text, range(6)))
    elapsed = time.monotonic() - started
    assert len(set(names)) == 2 and "MainThread" not in names
    assert elapsed >= 0.55  # six calls of 0.2 s on two threads take three rounds


def test_async_functions_run_on_the_event_loop(host: HostProcess) -> None:
    assert host.call("GET", "/api/loop").text == "MainThread"


def test_function_timeout_fails_the_invocation_with_500(host: HostProcess) -> None:
    since = len(host.lines)
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda path: host.call("GET", path), ["/api/slow/async", "/api/slow/sync"]))
    assert [(r.status, r.body) for r in replies] == [(500, b""), (500, b"")]
    assert time.monotonic() - started < 2.5  # both answered at the 1 s timeout, not at completion (3 s, 30 s)
    for name in ("slow_async", "slow_sync"):
        host.wait_for_log(rf"Exception: FunctionTimeoutError: Timeout value of 00:00:01 was exceeded by "
                          rf"function: Functions\.{name}$", since=since)
        failed = host.wait_for_log(EXECUTED.format(name=name, id="[0-9a-f-]+"), since=since)
        assert failed.group(1) == "Failed" and 950 <= int(failed.group(2)) < 2500


def test_user_log_records_appear_inside_the_invocation(host: HostProcess) -> None:
    since = len(host.lines)
    host.call("GET", "/api/logs")
    host.wait_for_log(EXECUTED.format(name="logs", id="[0-9a-f-]+"), since=since)
    lines = [line.split("] ", 1)[1] for line in host.lines[since:] if line.startswith("[")]
    start = next(i for i, line in enumerate(lines) if line.startswith("Executing 'Functions.logs'"))
    assert lines[start + 1:start + 3] == ["user info line", "user warning line"]
    assert lines[start + 3].startswith("Executed 'Functions.logs' (Succeeded")
    assert "user debug line" not in lines


def test_host_json_log_level_of_one_function(host: HostProcess) -> None:
    """`logging.logLevel.Function.quiet: Warning` hides its Information records, Executing/Executed too."""
    since = len(host.lines)
    assert host.call("GET", "/api/quiet").text == "quiet"
    host.wait_for_log(r"\] quiet warning line$", since=since)
    host.call("GET", "/api/loop")
    host.wait_for_log(EXECUTED.format(name="on_loop", id="[0-9a-f-]+"), since=since)
    shown = "\n".join(host.lines[since:])
    assert "quiet info line" not in shown and "Functions.quiet" not in shown


def test_shutdown_does_not_wait_for_a_timed_out_sync_function() -> None:
    with HostProcess(APP) as own:
        assert own.call("GET", "/api/slow/sync").status == 500  # its thread sleeps on for about 2 s
        started = time.monotonic()
        own.stop()
        assert time.monotonic() - started < 1.5
        own.wait_for_log(r"1 function invocation\(s\) still running at shutdown are abandoned\.$")
        assert own.proc is not None and own.proc.returncode == 0
