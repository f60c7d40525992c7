"""One running host: configuration, the indexed app, the durable engine, the HTTP server, triggers.

`Host.start()` brings everything up in order and undoes what it started if a later step fails;
`Host.stop()` tears down in reverse.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from funcemu.app import FunctionSpec, IndexedApp, load_app
from funcemu.bindings import BindingRegistry
from funcemu.config import HostConfig, apply_host_environment
from funcemu.errors import FuncemuError
from funcemu.http.admin import AdminApi
from funcemu.http.keys import LEVELS, Keys, request_key
from funcemu.http.server import build_application, level_required
from funcemu.invoke import InvocationResult, Invoker

log = logging.getLogger("funcemu.host")
DURABLE_BINDINGS = frozenset({"orchestrationTrigger", "activityTrigger", "entityTrigger", "durableClient"})
STORAGE_BINDINGS = frozenset({"timerTrigger", "queueTrigger", "blobTrigger", "queue", "blob", "table"})
# Triggers (of those funcemu serves) with function-level retries: Microsoft's "Azure Functions error
# handling and retries" lists Timer, Kafka, Event Hubs and Cosmos DB; queue and blob triggers retry
# through maxDequeueCount, HTTP is never retried.
RETRY_TRIGGERS = frozenset({"timerTrigger"})
AdminInvoker = Callable[[FunctionSpec, "str | None"], Awaitable[None]]


class PortInUseError(FuncemuError):
    def __init__(self, port: int) -> None:
        super().__init__(f"Port {port} is unavailable. Close the process using that port, or specify "
                         "another port using --port [-p].")


@dataclass
class HostOptions:
    storage: str = "sqlite"
    data_dir: Path | None = None
    time_skipping: bool = False
    enable_auth: bool = False
    verbose: bool = False
    orchestrator_process: bool = False  # orchestrator episodes in a child process (durable/worker.py)


class Host:
    def __init__(self, config: HostConfig, options: HostOptions | None = None) -> None:
        self.config = config
        self.options = options or HostOptions()
        self.data_dir = self.options.data_dir or config.app_root / ".funcemu"
        self.host_id = _host_id(config.app_root)
        self.state = "Default"
        self.indexed: IndexedApp = IndexedApp(config.app_root / config.script_file, None, [], {})
        self.bindings = BindingRegistry()
        self.invoker = Invoker(timeout=config.function_timeout)
        self.admin = AdminApi(self)
        self.keys: Keys | None = None
        self.engine: Any = None
        self.extra_routes: list[web.RouteDef] = []
        self.admin_invokers: dict[str, AdminInvoker] = {}  # trigger type -> runner (registered by triggers/)
        self.blob_queue: Any = None  # the blob triggers' host queue (triggers/), for the Event Grid webhook
        self.port = config.port
        self.rpc_base_url: str | None = None
        self._stack = AsyncExitStack()

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self.state = "Starting"
        started = time.perf_counter()
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            self.invoker.close()
            self.state = "Error"
            raise
        self.state = "Running"
        log.info("Host started (%dms)", (time.perf_counter() - started) * 1000)

    async def _start(self) -> None:
        main_socket = _bind(self.config.address, self.config.port)  # as Core Tools: the port is checked first
        self._stack.callback(main_socket.close)
        self.port = main_socket.getsockname()[1]
        apply_host_environment(self.config, self.port)
        self.indexed = load_app(self.config.app_root, self.config.script_file, self.config.functions_allow)
        log.info("%d functions loaded", len(self.indexed.functions))
        if self.options.enable_auth:
            self.keys = Keys.load(self.data_dir, [f.name for f in self.indexed.functions])
        durable_app = await self._start_durable()
        app = build_application(self, durable_app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        await web.SockSite(runner, main_socket).start()
        await self._start_triggers()

    def _uses(self, binding_types: frozenset[str]) -> bool:
        return any(b["type"] in binding_types for f in self.indexed.functions for b in f.bindings)

    async def _start_durable(self) -> web.Application | None:
        if not self._uses(DURABLE_BINDINGS):
            return None
        from funcemu.durable.setup import start_durable  # imported lazily: HTTP-only apps start faster
        return await start_durable(self, self._stack)

    async def _start_triggers(self) -> None:
        if not self._uses(STORAGE_BINDINGS):
            return
        from funcemu.triggers import start_triggers  # lazily: the Storage SDKs take ~1 s to import
        await start_triggers(self, self._stack)

    async def stop(self) -> None:
        self.state = "Stopping"
        await self._stack.aclose()
        self.invoker.close()
        self.state = "Stopped"

    # ---- calling functions --------------------------------------------------------------------
    async def call(self, spec: FunctionSpec, trigger_name: str, trigger_value: Any, metadata: dict[str, Any],
                   *, reason: str, log_calls: bool = True,
                   convert: Callable[[InvocationResult], Any] | None = None) -> InvocationResult:
        """Gather the other inputs, invoke, then convert the result and write the outputs.

        All of it is the invocation: if an input binding, `convert` (the HTTP response rendering) or an
        output writer fails, the invocation is logged and returned as failed. Triggers that support
        function-level retries retry a failed invocation by the function's `@app.retry` policy.
        """
        async def gather() -> dict[str, Any]:
            inputs = await self.bindings.gather_inputs(spec, metadata)
            inputs[trigger_name] = trigger_value
            return inputs

        async def finish(result: InvocationResult) -> None:
            if convert is not None:
                result.converted = convert(result)
            await self.bindings.write_outputs(spec, result.outputs, result.return_value, metadata)

        policy = spec.retry if spec.trigger_type in RETRY_TRIGGERS else None
        return await self.invoker.invoke(spec, gather, reason=reason, log_calls=log_calls, after=finish,
                                         policy=policy)

    async def invoke_by_admin(self, spec: FunctionSpec, raw_input: str | None) -> None:
        """`POST /admin/functions/{name}`: the trigger's listener turns the input into its trigger value."""
        runner = self.admin_invokers.get(spec.trigger_type)
        if runner is None:
            log.error("Function '%s' (%s) cannot be invoked through the admin API.", spec.name, spec.trigger_type)
            return
        await runner(spec, raw_input)

    # ---- URLs and keys ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        address = "localhost" if self.config.address in ("127.0.0.1", "0.0.0.0", "localhost") else self.config.address
        return f"http://{address}:{self.port}"

    def function_url(self, spec: FunctionSpec, base: str | None = None) -> str:
        prefix = f"{self.config.route_prefix}/" if self.config.route_prefix else ""
        return f"{base or self.base_url}/{prefix}{spec.route.lstrip('/')}"

    def authorized(self, request: web.Request, auth_level: str, function_name: str | None) -> bool:
        if self.keys is None:
            return True
        needed = level_required(auth_level)
        if needed == LEVELS["anonymous"]:
            return True
        return self.keys.level_of(request_key(request), function_name) >= needed


def _bind(address: str, port: int) -> socket.socket:
    """Bind before announcing: port 0 becomes the real port, a busy port is a one-line error."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise PortInUseError(port) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _host_id(app_root: Path) -> str:
    name = "".join(c for c in app_root.name.lower() if c.isalnum())[:32] or "funcemu"
    return name + "-" + uuid.uuid5(uuid.NAMESPACE_URL, str(app_root)).hex[:8]
