"""Wire the durable extension into a host: store, clock, engine, the client binding, both HTTP faces."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from funcemu.durable.activities import ActivityRunner
from funcemu.durable.api import RPC_PATH, client_binding_json, make_durable_app
from funcemu.durable.clock import Clock, RealClock, VirtualClock
from funcemu.durable.engine import Engine
from funcemu.durable.export import history_routes
from funcemu.durable.registry import DurableRegistry
from funcemu.durable.store import open_store
from funcemu.http.admin import json_response
from funcemu.http.keys import durable_system_key

if TYPE_CHECKING:
    from funcemu.host import Host

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
RPC_PORT = 17071  # the extension's LocalHttpListener (durable-protocol.md §5.1)


async def start_durable(host: Host, stack: AsyncExitStack) -> web.Application:
    config = host.config.host_json
    clock: Clock = VirtualClock(auto_skip=True) if host.options.time_skipping else RealClock()
    store = open_store(host.options.storage, data_dir=host.data_dir, hub_name=host.config.hub_name,
                       **_store_options(host))
    await store.open()
    stack.push_async_callback(store.close)
    cores = os.cpu_count() or 1
    engine_ref: list[Engine] = []
    engine = Engine(store, clock, DurableRegistry(host.indexed.functions), host.config.hub_name,
                    ActivityRunner(host, engine_ref),
                    max_activities=int(config.get("extensions.durableTask.maxConcurrentActivityFunctions",
                                                  10 * cores)),
                    max_orchestrations=int(config.get("extensions.durableTask.maxConcurrentOrchestratorFunctions",
                                                      10 * cores)),
                    poll_interval=getattr(store, "poll_interval", None))
    engine_ref.append(engine)
    host.engine = engine
    if host.options.orchestrator_process:
        from funcemu.durable.worker import OrchestratorProcess

        worker = OrchestratorProcess(host.config.app_root, host.config.script_file, host.config.functions_allow)
        await worker.start()
        stack.push_async_callback(worker.stop)  # after engine.stop, pushed below
        engine.orchestrator_process = worker
    system_key = host.keys.durable_key if host.keys else durable_system_key(host.data_dir)
    rpc_url = await _start_rpc_site(engine, stack, system_key, lambda request: host.base_url + WEBHOOK_PATH)
    host.rpc_base_url = rpc_url

    async def client_binding(spec: Any, binding: dict[str, Any], metadata: dict[str, Any]) -> str:
        return client_binding_json(base_url=host.base_url + WEBHOOK_PATH, rpc_base_url=rpc_url,
                                   hub_name=engine.hub_name, system_key=system_key)

    host.bindings.add_input("durableClient", client_binding)
    stack.push_async_callback(_close_sdk_client_session)
    host.extra_routes.extend(clock_routes(clock, engine))
    host.extra_routes.extend(history_routes(engine))
    await engine.start()
    stack.push_async_callback(engine.stop)
    return make_durable_app(engine, rpc=False, system_key=system_key)


async def _close_sdk_client_session() -> None:
    """The SDK client keeps one aiohttp session per process and never closes it (there is no worker shutdown
    hook); closing it here keeps "Unclosed client session" tracebacks out of the log at exit. Older SDKs
    have no shared session."""
    try:
        from azure.durable_functions.models.utils import http_utils
    except ImportError:
        return
    close = getattr(http_utils, "_close_session", None)
    if close is not None:
        await close()


def _store_options(host: Host) -> dict[str, Any]:
    if host.options.storage != "azure":
        return {}
    from funcemu.durable.store.connection import storage_connection

    return storage_connection(host.config)


async def _start_rpc_site(engine: Engine, stack: AsyncExitStack, system_key: str | None,
                          public_base_url: Any) -> str:
    """The SDK's RPC endpoint (`rpcBaseUrl`): the same handler on its own local port, as the real host."""
    app = web.Application(client_max_size=1024 ** 3)
    app.add_subapp(RPC_PATH, make_durable_app(engine, rpc=True, system_key=system_key,
                                              public_base_url=public_base_url))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    for port in _rpc_ports():
        site = web.TCPSite(runner, "127.0.0.1", port)
        try:
            await site.start()
        except OSError:  # busy: the next candidate
            await site.stop()
            continue
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/durabletask/"
    raise AssertionError("port 0 always binds")


def _rpc_ports() -> Iterator[int]:
    """17071 as the extension's LocalHttpListener, else a random free one in 30000-31000, else any."""
    yield RPC_PORT
    yield from random.sample(range(30000, 31001), 20)
    yield 0


def clock_routes(clock: Clock, engine: Engine) -> list[web.RouteDef]:
    """Emulator-only clock control for tests: read the clock, advance it, toggle automatic skipping."""

    async def read(request: web.Request) -> web.Response:
        return json_response({"now": engine.now().isoformat().replace("+00:00", "Z"),
                              "timeSkipping": clock.supports_time_skipping,
                              "autoSkip": bool(getattr(clock, "auto_skip", False))})

    async def advance(request: web.Request) -> web.Response:
        if not isinstance(clock, VirtualClock):
            return json_response({"Message": "The clock is real: start funcemu with --time-skipping."}, 400)
        try:
            seconds = float(request.query.get("seconds", "0"))
            clock.advance(timedelta(seconds=seconds))
        except ValueError as exc:
            return json_response({"Message": str(exc)}, 400)
        engine.wake()
        return await read(request)

    async def auto_skip(request: web.Request) -> web.Response:
        if not isinstance(clock, VirtualClock):
            return json_response({"Message": "The clock is real: start funcemu with --time-skipping."}, 400)
        clock.auto_skip = request.query.get("enabled", "true").lower() in ("1", "true", "yes")
        engine.wake()
        return await read(request)

    return [web.get("/admin/funcemu/clock", read), web.post("/admin/funcemu/clock/advance", advance),
            web.post("/admin/funcemu/clock/autoskip", auto_skip)]
