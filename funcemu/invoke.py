"""Call a user function the way the Python worker does.

Arguments go by keyword (binding name); `context` is injected when declared; every OUT binding gets a
fresh `Out`; sync functions run in a thread pool sized by PYTHON_THREADPOOL_THREAD_COUNT, async ones
on the event loop. Each call is logged as `Executing '...'` / `Executed '...'` like the host; with a
retry policy (`@app.retry`) a failed call is retried as the host's retry loop does.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import azure.functions as func

from funcemu.app import FunctionSpec, RetryPolicy, user_traceback
from funcemu.config import timespan_text
from funcemu.console import current_function

# The executor log reason of HTTP calls and of `POST /admin/functions/{name}` (functions-host.md §4.6).
HOST_API_REASON = "This function was programmatically called via the host APIs."
current_invocation: contextvars.ContextVar[str | None] = contextvars.ContextVar("invocation", default=None)

# Invocation and trace ids need to be unique, not unpredictable: a generator of our own (seeded once from
# os.urandom) instead of uuid4, whose os.urandom call releases the GIL to the thread pool on every call,
# and never the `random` module's, which an app may seed.
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)  # a forked child must not repeat its parent's ids
_jitter = random.Random()  # the retry backoff's randomization, apart from the app's `random`
_VERSION_4 = ~(0xF000 << 64) & ~(0xC000 << 48) & ((1 << 128) - 1)
_VERSION_4_BITS = (4 << 76) | (0x8000 << 48)


def new_invocation_id() -> str:
    """A random id in uuid4's text form (version 4, RFC 4122 variant)."""
    text = f"{_ids.getrandbits(128) & _VERSION_4 | _VERSION_4_BITS:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.lru_cache(maxsize=1024)
def function_logger(name: str) -> logging.Logger:
    """The `Function.<name>` logger the host logs each invocation to."""
    return logging.getLogger(f"Function.{name}")


class Out(func.Out):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class TraceContext:
    def __init__(self, trace_parent: str, trace_state: str = "", attributes: dict[str, str] | None = None):
        self.trace_parent, self.trace_state, self.attributes = trace_parent, trace_state, attributes or {}
        self.Traceparent, self.Tracestate, self.Attributes = self.trace_parent, self.trace_state, self.attributes


@dataclass
class RpcException:
    """The previous attempt's failure, as the host sends it in the retry context."""

    message: str = ""
    stack_trace: str = ""
    source: str = ""


@dataclass
class RetryContext:
    retry_count: int = 0
    max_retry_count: int = 0
    rpc_exception: Any = None


class Context(func.Context):
    """The worker's `context`: invocation id, function name and directory, trace and retry context."""

    def __init__(self, invocation_id: str, spec: FunctionSpec, retry: RetryContext | None = None) -> None:
        self._invocation_id, self._spec = invocation_id, spec
        trace_id, span_id = (new_invocation_id().replace("-", "") for _ in range(2))  # as uuid4().hex
        self._trace = TraceContext(f"00-{trace_id}-{span_id[:16]}-01")
        self._retry = retry or RetryContext()
        self._thread_local = threading.local()  # `.invocation_id` is set in the thread that runs the call

    invocation_id = property(lambda self: self._invocation_id)
    function_name = property(lambda self: self._spec.name)
    function_directory = property(lambda self: self._spec.directory)
    trace_context = property(lambda self: self._trace)
    retry_context = property(lambda self: self._retry)
    thread_local_storage = property(lambda self: self._thread_local)


@dataclass
class InvocationResult:
    invocation_id: str
    return_value: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    traceback: str = ""
    converted: Any = None  # what `after` made of the return value (the HTTP response)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_message(self) -> str:
        """The worker's text for a failure: `<ExcType>: <message>`."""
        return f"{type(self.error).__name__}: {self.error}" if self.error else ""


class FunctionTimeoutError(Exception):
    pass


After = Callable[[InvocationResult], Awaitable[None]]
# Decoded inputs (binding name -> value), or what gathers them at the start of each attempt.
Inputs = dict[str, Any] | Callable[[], Awaitable[dict[str, Any]]]


def thread_pool_size(environ: Any = None) -> int | None:
    raw = (environ or os.environ).get("PYTHON_THREADPOOL_THREAD_COUNT")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        logging.getLogger("funcemu.invoke").warning(
            "PYTHON_THREADPOOL_THREAD_COUNT=%r is not an integer >= 1; using the default.", raw)
        return None
    return value


class Invoker:
    """Runs invocations; one per host, owning the sync thread pool."""

    def __init__(self, timeout: float | None = None, pool_size: int | None = None) -> None:
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=pool_size or thread_pool_size(),
                                       thread_name_prefix="funcemu-worker")
        self._lock = threading.Lock()
        self._busy = 0

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def invoke(self, spec: FunctionSpec, inputs: Inputs, *, reason: str, log_calls: bool = True,
                     retry: RetryContext | None = None, after: After | None = None,
                     policy: RetryPolicy | None = None) -> InvocationResult:
        """Call `spec` with `inputs` (binding name -> value, or a coroutine function gathering them).

        Gathering the inputs, the call and `after` (converting the return value, writing the outputs)
        form one invocation, logged as `Executing`/`Executed`: a failure of any of them fails it.
        With `policy`, a failed invocation is retried as the host's retry loop does.
        """
        if policy is None:
            return await self._attempt(spec, inputs, reason, log_calls, retry, after)
        return await self._with_retries(spec, inputs, reason, log_calls, after, policy)

    async def _with_retries(self, spec: FunctionSpec, inputs: Inputs, reason: str, log_calls: bool,
                            after: After | None, policy: RetryPolicy) -> InvocationResult:
        """WebJobs' `FunctionExecutorExtensions.TryExecuteAsync`: each attempt is a new invocation."""
        logger = function_logger(spec.name)
        context = RetryContext(0, policy.max_retry_count)
        delays = retry_delays(policy)
        while True:
            result = await self._attempt(spec, inputs, reason, log_calls, context, after)
            if result.ok:
                return result
            if policy.max_retry_count != -1 and context.retry_count >= policy.max_retry_count:
                logger.error("Function execution failed after '%d' retries.", context.retry_count)
                return result
            failure = RpcException(result.error_message, result.traceback)
            context = RetryContext(context.retry_count + 1, policy.max_retry_count, failure)
            delay = next(delays)
            logger.debug("Waiting for `%s` before retrying function execution. Next attempt: '%d'. "
                         "Max retry count: '%d'.", _dotnet_timespan(delay), context.retry_count,
                         policy.max_retry_count)
            await asyncio.sleep(delay)

    async def _attempt(self, spec: FunctionSpec, inputs: Inputs, reason: str, log_calls: bool,
                       retry: RetryContext | None, after: After | None) -> InvocationResult:
        invocation_id = new_invocation_id()
        logger = function_logger(spec.name)
        if log_calls:
            logger.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id)
        started = time.perf_counter()
        try:
            values = inputs if isinstance(inputs, dict) else await inputs()
        except Exception as exc:  # an input binding failed: the invocation fails before the call
            result = InvocationResult(invocation_id, error=exc, traceback=user_traceback(exc))
        else:
            result = await self._call(spec, values, invocation_id, retry)
        if result.ok and after is not None:
            try:
                await after(result)
            except Exception as exc:
                result.error, result.traceback = exc, user_traceback(exc)
        if log_calls:
            _log_outcome(logger, spec, result, time.perf_counter() - started)
        return result

    async def _call(self, spec: FunctionSpec, inputs: dict[str, Any], invocation_id: str,
                    retry: RetryContext | None) -> InvocationResult:
        result = InvocationResult(invocation_id)
        args = dict(inputs)
        outs = {b["name"]: Out() for b in spec.output_bindings if b["name"] != "$return"}
        args.update(outs)
        if spec.needs_context:
            args["context"] = Context(invocation_id, spec, retry)
        token, function_token = current_invocation.set(invocation_id), current_function.set(spec.name)
        try:
            value = await self._run(spec, args)
            _check_return(spec, value)
            result.return_value = value
            result.outputs = {name: out.get() for name, out in outs.items() if out.get() is not None}
        except Exception as exc:  # the user's exception is a failed invocation, never a host crash
            result.error, result.traceback = exc, user_traceback(exc)
        finally:
            current_invocation.reset(token)
            current_function.reset(function_token)
        return result

    async def _run(self, spec: FunctionSpec, args: dict[str, Any]) -> Any:
        if spec.is_async:
            call = _call_in_this_thread(spec, args)
        else:
            ctx = contextvars.copy_context()
            call = asyncio.get_running_loop().run_in_executor(
                self.pool, lambda: ctx.run(self._call_in_pool, spec, args))
        if self.timeout is None:
            return await call
        try:
            return await asyncio.wait_for(call, self.timeout)
        except asyncio.TimeoutError:
            raise FunctionTimeoutError(
                f"Timeout value of {_format_timespan(self.timeout)} was exceeded by function: "
                f"Functions.{spec.name}") from None


    def _call_in_pool(self, spec: FunctionSpec, args: dict[str, Any]) -> Any:
        with self._lock:
            self._busy += 1
        try:
            return _call_in_this_thread(spec, args)
        finally:
            with self._lock:
                self._busy -= 1

    @property
    def busy_threads(self) -> int:
        """Sync calls still running in the pool (a timed-out call keeps its thread until it returns)."""
        with self._lock:
            return self._busy


def _call_in_this_thread(spec: FunctionSpec, args: dict[str, Any]) -> Any:
    """Call the function (an async one returns its coroutine) with the context bound to this thread."""
    context = args.get("context")
    if spec.needs_context and isinstance(context, Context):
        context.thread_local_storage.invocation_id = context.invocation_id
    return spec.callable(**args)


def _check_return(spec: FunctionSpec, value: Any) -> None:
    if value is not None and not spec.takes_return:
        raise RuntimeError(f"function '{spec.name}' without a $return bindingreturned a non-None value")


def _log_outcome(logger: logging.Logger, spec: FunctionSpec, result: InvocationResult, seconds: float) -> None:
    millis = int(seconds * 1000)
    if result.ok:
        logger.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", spec.name,
                    result.invocation_id, millis)
        return
    logger.error("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)\n"
                 "System.Private.CoreLib: Exception while executing function: Functions.%s. "
                 "System.Private.CoreLib: Result: Failure\nException: %s\nStack: %s", spec.name,
                 result.invocation_id, millis, spec.name, result.error_message, result.traceback.rstrip())


def retry_delays(policy: RetryPolicy) -> Iterator[float]:
    """Seconds to wait before retries 1, 2, ...: the fixed delay, or WebJobs'
    RandomizedExponentialBackoffStrategy (minimum, then minimum + 0.8..1.2 x 2^(n-1) x minimum, capped)."""
    if policy.strategy == "fixed_delay":
        while True:
            yield policy.delay_interval
    low, high = policy.minimum_interval, policy.maximum_interval
    current, exponent = 0.0, 0
    while True:
        if current != high:
            interval = low + (_jitter.uniform(0.8, 1.2) * 2 ** (exponent - 1) * low if exponent > 0 else 0.0)
            if interval < high:
                current, exponent = interval, exponent + 1
            else:
                current = high
        yield current


def _dotnet_timespan(seconds: float) -> str:
    return timespan_text(timedelta(seconds=seconds))


def _format_timespan(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
