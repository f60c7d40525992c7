"""`funcemu start` (and `python -m funcemu start`): run a function app the way `func start` does.

Only this module turns a `FuncemuError` into a message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Sequence

from funcemu import __version__
from funcemu.config import find_app_root, load_config
from funcemu.console import say, setup_console
from funcemu.errors import FuncemuError
from funcemu.host import Host, HostOptions

log = logging.getLogger("funcemu.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="funcemu", description="A pure-Python local host for Azure Functions "
                                     "Python v2 apps with Durable Functions.")
    parser.add_argument("--version", action="version", version=f"funcemu {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="run the function app in this folder (or --app PATH)")
    start.add_argument("--app", type=Path, default=None, help="the function app folder (default: here)")
    start.add_argument("-p", "--port", type=int, default=None,
                       help="port (default: local.settings.json Host.LocalHttpPort, else 7071; 0 = any free port)")
    start.add_argument("--host", "--address", dest="address", default=None, help="address to bind (127.0.0.1)")
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
    start.add_argument("--verbose", action="store_true")
    _add_extra_commands(commands)
    return parser


def _add_extra_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    try:
        from funcemu.durable.cli import add_commands
    except ImportError:
        return
    add_commands(commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "start":
        return int(args.run(args))
    setup_console(verbose=args.verbose)
    try:
        return asyncio.run(_serve(args))
    except FuncemuError as exc:
        print(f"\033[31m{exc}\033[0m" if sys.stderr.isatty() else str(exc), file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0


async def _serve(args: argparse.Namespace) -> int:
    app_root = find_app_root(args.app or Path.cwd())
    config = load_config(app_root, port=args.port, address=args.address, cors=args.cors,
                         cors_credentials=args.cors_credentials, functions=args.functions)
    options = HostOptions(storage=args.storage, data_dir=args.data_dir, time_skipping=args.time_skipping,
                          enable_auth=args.enable_auth, verbose=args.verbose)
    host = Host(config, options)
    _print_banner()
    await host.start()
    try:
        print_functions(host)
        if host.keys is not None:
            _print_keys(host)
        if not args.verbose:
            say("For detailed output, run func with --verbose flag.")
        say(f"Listening on http://{config.address}:{host.port}")
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
        log.warning("No job functions found.")
        return
    say()
    say("Functions:")
    say()
    for spec in [f for f in functions if f.is_http]:
        methods = f"[{','.join(spec.methods)}]" if spec.methods else ""
        say(f"\t{spec.name}: {methods} {host.function_url(spec)}")
        say()
    for spec in [f for f in functions if not f.is_http]:
        say(f"\t{spec.name}: {spec.trigger_type}")
        say()


def _print_keys(host: Host) -> None:
    assert host.keys is not None
    say("Keys (--enable-auth; stored in .funcemu/keys.json):")
    say(f"\tmaster (admin): {host.keys.master}")
    say(f"\tdurabletask_extension (system): {host.keys.durable_key}")
    for name, key in sorted(host.keys.functions.items()):
        say(f"\t{name} (function): {key}")
    say()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
