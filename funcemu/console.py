"""Console output in the shape `func start` prints: `[yyyy-MM-ddTHH:mm:ss.fffZ] message` per line.

Which records show follows Core Tools (docs §8): system categories from Warning (Information with
`--verbose` or in a CI environment), user categories from Information (`--user-log-level` or
`FUNCTIONS_USER_LOG_LEVEL`), `logging.logLevel.default` in host.json overriding both (the user level
only when not set explicitly); then the host.json category rules (`Function`, `Function.<name>`, ...),
longest prefix first. Messages starting with `ALWAYS_SHOWN` pass every filter.
User log records inside an invocation carry the category `Function.<name>.User`, as in the host.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TextIO

SYSTEM_PREFIXES = ("funcemu", "azure", "aiohttp", "asyncio", "urllib3")
# .NET LogLevel names -> Python levels; `None` hides everything.
DOTNET_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "information": logging.INFO,
                 "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
                 "none": logging.CRITICAL + 10}
# Core Tools treats the run as verbose when any of these is non-empty (cli: LoggingFilterHelper.IsCiEnvironment).
CI_VARIABLES = ("CI", "CONTINUOUS_INTEGRATION", "BUILD_NUMBER", "RUN_ID")
# Shown whatever the levels, compared case-insensitively (cli: ColoredConsoleLogger._allowedLogsPrefixes).
ALWAYS_SHOWN = ("worker process started and initialized.", "host lock lease acquired by instance id")
current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return "\n".join(f"[{stamp}] {line}" for line in text.splitlines() or [""])


def parse_level(value: Any) -> int | None:
    """A .NET LogLevel name (case-insensitive) as a Python level, or None if it is not one."""
    return DOTNET_LEVELS.get(str(value).strip().lower())


def in_ci(environ: Mapping[str, str]) -> bool:
    """A CI environment lowers the system log level to Information, like `--verbose` (docs §8)."""
    return any(environ.get(name) for name in CI_VARIABLES)


def category_of(record: logging.LogRecord) -> str:
    """The host's category: user records inside an invocation belong to `Function.<name>.User`."""
    name = record.name
    if name.startswith(SYSTEM_PREFIXES) or name.startswith(("Function.", "Host.")):
        return name
    function = current_function.get()
    return f"Function.{function}.User" if function else name


class CategoryFilter(logging.Filter):
    """System categories from `system_level` up; user categories (functions, user loggers) from `user_level`."""

    def __init__(self, system_level: int, user_level: int, rules: Mapping[str, int] | None = None,
                 user_explicit: bool = False) -> None:
        super().__init__()
        self.system_level, self.user_level = system_level, user_level
        self.user_explicit = user_explicit  # --user-log-level / FUNCTIONS_USER_LOG_LEVEL: host.json default won't override
        self.rules = {k.lower(): v for k, v in (rules or {}).items()}

    def filter(self, record: logging.LogRecord) -> bool:
        category = category_of(record)
        system = category.startswith(SYSTEM_PREFIXES)
        rule = self._rule(category.lower())
        if record.levelno >= (self.system_level if system else self.user_level) and (
                rule is None or record.levelno >= rule):
            return True
        return record.getMessage().lower().startswith(ALWAYS_SHOWN)

    def _rule(self, category: str) -> int | None:
        """The level of the longest host.json category that prefixes `category` (else `default`)."""
        matches = [key for key in self.rules if key != "default" and category.startswith(key)]
        return self.rules[max(matches, key=len)] if matches else self.rules.get("default")


def setup_console(verbose: bool = False, user_level: int | None = None,
                  stream: TextIO | None = None) -> logging.Handler:
    """`verbose`: system records from Information; `user_level`: the explicit user level (else Information)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(ConsoleFormatter())
    user = logging.INFO if user_level is None else user_level
    handler.addFilter(CategoryFilter(logging.INFO if verbose else logging.WARNING, user,
                                     user_explicit=user_level is not None))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, ConsoleFormatter)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else min(user, logging.INFO))
    # The Storage SDK's request/response dumps (several lines per queue poll) are wire traces, not host
    # log lines: keep them out of --verbose and CI output.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    return handler


def apply_log_levels(handler: logging.Handler, levels: Mapping[str, int]) -> None:
    """host.json `logging.logLevel`: `default` sets the system level, and the user level unless that
    was set explicitly; the rest are category rules. As the CLI sets `logLevel.Function` to the user
    level when nothing configures it (docs §7), `function` defaults to the user level."""
    root = logging.getLogger()
    for found in handler.filters:
        if isinstance(found, CategoryFilter):
            found.rules = {k.lower(): v for k, v in levels.items()}
            default = found.rules.get("default")
            if default is not None:
                found.system_level = default
                if not found.user_explicit:
                    found.user_level = default
            found.rules.setdefault("function", found.user_level)
            root.setLevel(min(root.level, found.system_level, found.user_level))


def say(text: str = "") -> None:
    """A plain console line (banners, the Functions block), flushed at once."""
    out = sys.stdout.raw if isinstance(sys.stdout, ConsoleStdout) else sys.stdout
    out.write(text + "\n")
    out.flush()


class ConsoleStdout(io.TextIOBase):
    """The worker's stdout as the host shows it (functions-host.md §3.11, §8): every complete line that
    user code prints is logged as `Host.Function.Console`, so it gets the console's `[time] ` prefix and
    filter. A partial line waits for its newline, or for flush() (an `input()` or pdb prompt), which
    writes it through as it is. Writes made while logging one of these lines go straight to `raw`."""

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self.raw = raw
        self._local = threading.local()

    def write(self, text: str) -> int:
        local = self._local
        if getattr(local, "busy", False):  # a handler that writes to sys.stdout: no loop
            return self.raw.write(text)
        *lines, local.pending = (getattr(local, "pending", "") + text).split("\n")
        if lines:
            local.busy = True
            try:
                for line in lines:
                    _CONSOLE_LOG.info("%s", line)
            finally:
                local.busy = False
        return len(text)

    def flush(self) -> None:
        pending = "" if getattr(self._local, "busy", False) else getattr(self._local, "pending", "")
        if pending:
            self._local.pending = ""
            self.raw.write(pending)
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.raw, "encoding", "utf-8")


_CONSOLE_LOG = logging.getLogger("Host.Function.Console")
