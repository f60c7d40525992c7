"""Failed invocations in process, without storage (docs §3.3, §3.8, §8.7, §2.4): an input binding that fails
is a failed invocation like a function exception (Executing, Executed (Failed ...), the exception lines);
`@app.retry` policies retry failed timer invocations with the retry context; HTTP is never retried.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from funcemu.app import FunctionSpec, RetryPolicy, _spec
from funcemu.host import Host
from funcemu.invoke import RetryContext, _dotnet_timespan, retry_delays

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
CALLS: list[str] = []
RETRIES: list[tuple[int, int, Any]] = []


@app.route(route="rows")
@app.table_input(arg_name="rows", connection="AzureWebJobsStorage", table_name="tt")
def with_table(req: func.HttpRequest, rows: str) -> str:
    CALLS.append("with_table")
    return rows


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", use_monitor=False)
@app.blob_input(arg_name="data", path="c/b", connection="AzureWebJobsStorage")
def timer_with_blob(timer: func.TimerRequest, data: str) -> None:
    CALLS.append("timer_with_blob")


@app.retry(strategy="fixed_delay", max_retry_count="2", delay_interval="00:00:00")
@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", use_monitor=False)
def flaky(timer: func.TimerRequest, context: func.Context) -> None:
    retry = context.retry_context
    RETRIES.append((retry.retry_count, retry.max_retry_count, retry.rpc_exception))  # type: ignore[attr-defined]
    if len(RETRIES) < int(timer.schedule.get("succeed_on", 99)):  # type: ignore[attr-defined]
        raise ValueError(f"attempt {retry.retry_count} fails")


@app.retry(strategy="exponential_backoff", max_retry_count="3", minimum_interval="00:00:01",
           maximum_interval="00:00:05")
@app.route(route="http_retry")
def http_retry(req: func.HttpRequest) -> str:
    CALLS.append("http_retry")
    raise ValueError("http boom")


@functools.lru_cache(maxsize=1)
def specs() -> dict[str, FunctionSpec]:
    return {str(fn.get_function_name()): _spec(fn) for fn in app.get_functions()}


def make_host(tmp_path: Path) -> Host:
    config = SimpleNamespace(app_root=tmp_path, script_file="function_app.py", function_timeout=None, port=0)
    return Host(config)  # type: ignore[arg-type]  # only what calling a function needs


def call(host: Host, name: str, trigger_value: Any, **options: Any) -> Any:
    spec = specs()[name]
    try:
        return asyncio.run(host.call(spec, spec.trigger["name"], trigger_value, {}, reason="test", **options))
    finally:
        host.invoker.close()


def timer(**schedule: Any) -> func.TimerRequest:
    return TimerRequest(past_due=False, schedule=schedule)


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    RETRIES.clear()


def messages(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == f"Function.{name}"]


def test_an_input_binding_that_raises_is_a_failed_invocation(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    async def rejected(spec: Any, binding: dict[str, Any], metadata: dict[str, Any]) -> Any:
        raise ValueError("The table name 'tt' is invalid.")

    host = make_host(tmp_path)
    host.bindings.add_input("table", rejected)
    converted: list[Any] = []
    with caplog.at_level(logging.INFO):
        result = call(host, "with_table", func.HttpRequest("GET", "http://x/api/rows", body=b""),
                      convert=converted.append)
    assert not result.ok and result.error_message == "ValueError: The table name 'tt' is invalid."
    assert CALLS == [] and converted == []   # neither the function nor the response rendering ran
    executing, executed = messages(caplog, "with_table")
    assert re.fullmatch(rf"Executing 'Functions\.with_table' \(Reason='test', Id={result.invocation_id}\)",
                        executing)
    lines = executed.splitlines()
    assert re.fullmatch(rf"Executed 'Functions\.with_table' \(Failed, Id={result.invocation_id}, "
                        r"Duration=\d+ms\)", lines[0])
    assert lines[1] == ("System.Private.CoreLib: Exception while executing function: Functions.with_table. "
                        "System.Private.CoreLib: Result: Failure")
    assert lines[2] == "Exception: ValueError: The table name 'tt' is invalid."
    assert lines[3].startswith("Stack: ")


def test_an_input_binding_without_a_provider_fails_the_invocation(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        result = call(make_host(tmp_path), "timer_with_blob", timer())
    assert not result.ok and CALLS == []
    assert "no provider for input binding 'data' of type 'blob'" in result.error_message
    assert [m.split(" (")[0] for m in messages(caplog, "timer_with_blob")] == [
        "Executing 'Functions.timer_with_blob'", "Executed 'Functions.timer_with_blob'"]
    assert "(Failed, Id=" in messages(caplog, "timer_with_blob")[1]


def test_a_timer_is_retried_with_the_retry_context_until_it_succeeds(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        result = call(make_host(tmp_path), "flaky", timer(succeed_on=3))
    assert result.ok
    assert [(count, most) for count, most, _ in RETRIES] == [(0, 2), (1, 2), (2, 2)]
    assert RETRIES[0][2] is None
    assert RETRIES[1][2].message == "ValueError: attempt 0 fails" and "attempt 0 fails" in RETRIES[1][2].stack_trace
    assert RETRIES[2][2].message == "ValueError: attempt 1 fails"
    logged = messages(caplog, "flaky")
    executed = [m.split(",")[0] for m in logged if m.startswith("Executed")]
    assert executed == ["Executed 'Functions.flaky' (Failed"] * 2 + ["Executed 'Functions.flaky' (Succeeded"]
    ids = {m.split("Id=")[1][:36] for m in logged if m.startswith("Executing")}
    assert len(ids) == 3   # every attempt is an invocation of its own
    assert [m for m in logged if m.startswith("Waiting")] == [
        "Waiting for `00:00:00` before retrying function execution. Next attempt: '1'. Max retry count: '2'.",
        "Waiting for `00:00:00` before retrying function execution. Next attempt: '2'. Max retry count: '2'."]


def test_a_timer_fails_after_max_retry_count_retries(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        result = call(make_host(tmp_path), "flaky", timer())
    assert not result.ok and result.error_message == "ValueError: attempt 2 fails"
    assert len(RETRIES) == 3
    failed = [r for r in caplog.records if r.getMessage() == "Function execution failed after '2' retries."]
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR


def test_http_functions_are_not_retried(tmp_path: Path) -> None:
    result = call(make_host(tmp_path), "http_retry", func.HttpRequest("GET", "http://x/api/http_retry", body=b""))
    assert not result.ok and CALLS == ["http_retry"]


def test_retry_policies_are_indexed_as_the_worker_reports_them() -> None:
    assert specs()["flaky"].retry == RetryPolicy("fixed_delay", 2, delay_interval=0.0)
    assert specs()["http_retry"].retry == RetryPolicy("exponential_backoff", 3, minimum_interval=1.0,
                                                      maximum_interval=5.0)
    assert specs()["with_table"].retry is None
    assert RetryContext() == RetryContext(0, 0, None)  # no policy: what the worker shows (§3.3)


def test_retry_delays() -> None:
    fixed = retry_delays(RetryPolicy("fixed_delay", 3, delay_interval=4.0))
    assert [next(fixed) for _ in range(3)] == [4.0, 4.0, 4.0]
    backoff = retry_delays(RetryPolicy("exponential_backoff", -1, minimum_interval=1.0, maximum_interval=5.0))
    first, second, third, fourth, fifth = (next(backoff) for _ in range(5))
    assert first == 1.0 and 1.8 <= second <= 2.2 and 2.6 <= third <= 3.4
    assert 4.2 <= fourth <= 5.0 and fifth == 5.0


def test_dotnet_timespan_text() -> None:
    assert [_dotnet_timespan(s) for s in (0, 1, 61.5, 90061)] == [
        "00:00:00", "00:00:01", "00:01:01.5000000", "1.01:01:01"]
