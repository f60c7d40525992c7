"""`funcemu start` (and `python -m funcemu start`): run a function app the way `func start` does.

Only this module turns a `FuncemuError` into a message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from funcemu import __version__
from funcemu.config import ConfigError, find_app_root, is_ip_address, load_config
from funcemu.console import ConsoleStdout, apply_log_levels, in_ci, parse_level, say, setup_console
from funcemu.errors import FuncemuError

if TYPE_CHECKING:
    from funcemu.host import Host
    from funcemu.http.keys import Keys

log = logging.getLogger("funcemu.cli")
NO_FUNCTIONS = ("No job functions found. Try making your job classes and methods public. If you're using binding "
                "extensions (e.g. Azure Storage, ServiceBus, Timers, etc.) make sure you've called the registration "
                "method for the extension(s) in your startup code (e.g. builder.AddAzureStorage(), "
                "builder.AddServiceBus(), builder.AddTimers(), etc.).")
PROXIES_NOT_SUPPORTED = ("Warning: Proxies are not supported in Azure Functions v4. Instead of 'proxies.json', "
                         "try Azure API Management: https://aka.ms/AAfiueq")


def build_parser(with_tools: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="funcemu", description="A pure-Python local host for Azure Functions "
                                     "Python v2 apps with Durable Functions.")
    parser.add_argument("--version", action="version", version=f"funcemu {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="run the function app in this folder (or --app PATH)")
    start.add_argument("--app", type=Path, default=None, help="the function app folder (default: here)")
    start.add_argument("-p", "--port", type=int, default=None,
                       help="port (default: local.settings.json Host.LocalHttpPort, else 7071; 0 = any free port)")
    start.add_argument("--host", "--address", dest="address", default=None,
                       help="IP address to bind (default: local.settings.json Host.LocalHttpAddress, else 127.0.0.1)")
    start.add_argument("--cors", default=None, help="comma-separated allowed origins")
    start.add_argument("--cors-credentials", action="store_true", default=None)
    start.add_argument("--functions", nargs="+", default=None, metavar="NAME", help="serve only these functions")
    start.add_argument("--storage", choices=["sqlite", "memory", "azure"], default="sqlite",
                       help="durable store: embedded sqlite (default), memory, or Azure Storage")
    start.add_argument("--data-dir", type=Path, default=None, help="where the embedded store lives (<app>/.funcemu)")
    start.add_argument("--time-skipping", action="store_true", help="jump the clock to the next durable timer "
                       "whenever nothing else can run")
    start.add_argument("--enable-auth", "--enableAuth", dest="enable_auth", action="store_true",
                       help="enforce function keys (generated in <app>/.funcemu/keys.json)")
    start.add_argument("--orchestrator-process", action="store_true",
                       help="run orchestrator code in a child process, as the real host's worker does: "
                       "more throughput on two cores or more; breakpoints in orchestrators then need "
                       "a debugger attached to that process (POSIX only)")
    start.add_argument("--user-log-level", default=None, metavar="LEVEL",
                       help="minimum level of user logs shown: Trace, Debug, Information, Warning, Error, Critical, "
                       "None (default: FUNCTIONS_USER_LOG_LEVEL, else host.json logging.logLevel.default, else "
                       "Information)")
    start.add_argument("--verbose", action="store_true")
    if with_tools:  # `start` alone skips importing the durable tools: startup time counts
        _add_extra_commands(commands)
    return parser


def _add_extra_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    try:
        from funcemu.durable.cli import add_commands
    except ImportError:
        return
    add_commands(commands)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(with_tools=argv[:1] != ["start"]).parse_args(argv)
    if args.command != "start":
        return int(args.run(args))
    # Read from the environment before local.settings.json is applied, as Core Tools does.
    args.user_log_level = _user_log_level(args.user_log_level or os.environ.get("FUNCTIONS_USER_LOG_LEVEL"))
    user_level = parse_level(args.user_log_level) if args.user_log_level else None
    console = setup_console(verbose=args.verbose or in_ci(os.environ), user_level=user_level)
    sys.stdout = ConsoleStdout(sys.stdout)  # print() in the app: `[time] line`, as the worker's stdout
    host: Host | None = None
    try:
        host = _prepare(args, console)
        code = asyncio.run(_serve(host, verbose=args.verbose))
    except FuncemuError as exc:
        print(f"\033[31m{exc}\033[0m" if sys.stderr.isatty() else str(exc), file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        code = 0
    if host is not None and host.invoker.busy_threads:
        _abandon(host.invoker.busy_threads, code)
    return code


def _user_log_level(name: str | None) -> str | None:
    """A .NET LogLevel name; like Core Tools, anything else is ignored (the default applies)."""
    return name.strip() if name and parse_level(name) is not None else None


def _abandon(busy: int, code: int) -> None:
    """Exit without joining worker threads still inside a function (as the host kills its worker)."""
    log.warning("%d function invocation(s) still running at shutdown are abandoned.", busy)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _prepare(args: argparse.Namespace, console: logging.Handler) -> Host:
    """The configuration and the (not yet started) host; configuration errors raise ConfigError."""
    if args.address is not None and not is_ip_address(args.address):
        raise FuncemuError(f"--address: '{args.address}' is not an IP address (a host name is not accepted; "
                           "use e.g. 127.0.0.1 or 0.0.0.0)")
    if args.app is not None and not args.app.is_dir():
        raise ConfigError(args.app, "not found: --app must name the function app folder")
    app_root = find_app_root(args.app or Path.cwd())
    data_dir = args.data_dir.resolve() if args.data_dir else None
    os.chdir(app_root)  # the worker's working directory is the app root
    config = load_config(app_root, port=args.port, address=args.address, cors=args.cors,
                         cors_credentials=args.cors_credentials, functions=args.functions,
                         user_log_level=args.user_log_level)
    apply_log_levels(console, config.log_levels)
    from funcemu.host import Host, HostOptions  # after the configuration: its errors need no server code

    return Host(config, HostOptions(storage=args.storage, data_dir=data_dir, time_skipping=args.time_skipping,
                                    enable_auth=args.enable_auth, verbose=args.verbose,
                                    orchestrator_process=args.orchestrator_process))


async def _serve(host: Host, verbose: bool) -> int:
    _print_banner()
    if (host.config.app_root / "proxies.json").exists():
        say(PROXIES_NOT_SUPPORTED)
    await host.start()
    try:
        # Both lines pass every log filter (docs §8): the worker's comes during host start, before the
        # Functions block; the lease's after it, once the host is running.
        log.info("Worker process started and initialized.")
        print_functions(host)
        if host.keys is not None:
            _print_keys(host.keys)
        if not verbose:
            say("For detailed output, run func with --verbose flag.")
        log.info("Host lock lease acquired by instance ID '%s'.", host.host_id)
        address = host.config.address
        say(f"Listening on http://{f'[{address}]' if ':' in address else address}:{host.port}")
        await _wait_for_signal()
    finally:
        await host.stop()
    return 0


def _print_banner() -> None:
    say()
    say("Azure Functions Core Tools (funcemu)")
    say(f"Core Tools Version:       funcemu {__version__} (64-bit)")
    say("Function Runtime Version: 4.1037.0 (emulated)")
    say()


def print_functions(host: Host) -> None:
    functions = host.indexed.functions
    if not functions:
        log.warning(NO_FUNCTIONS)
        return
    say()
    say("Functions:")
    say()
    enabled = [f for f in functions if not f.disabled]
    for spec in [f for f in enabled if f.is_http]:
        methods = f"[{','.join(spec.methods)}]" if spec.methods else ""
        say(f"\t{spec.name}: {methods} {host.function_url(spec)}")
        say()
    for spec in [f for f in enabled if not f.is_http]:
        say(f"\t{spec.name}: {spec.trigger_type}")
        say()
    for spec in [f for f in functions if f.disabled]:
        say(f"Function {spec.name} is disabled.")


def _print_keys(keys: Keys) -> None:
    say(f"Keys (--enable-auth; stored in {keys.path}):")
    say(f"\tmaster (admin): {keys.master}")
    for name, key in sorted(keys.host.items()):
        say(f"\t{name} (host): {key}")
    for name, key in sorted(keys.system.items()):
        say(f"\t{name} (system): {key}")
    for name, key in sorted(keys.functions.items()):
        say(f"\t{name} (function): {key}")
    say()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
