"""Console output in the shape `func start` prints: `[yyyy-MM-ddTHH:mm:ss.fffZ] message` per line."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

SYSTEM_PREFIXES = ("funcemu", "azure", "aiohttp", "asyncio", "urllib3")


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return "\n".join(f"[{stamp}] {line}" for line in text.splitlines() or [""])


class CategoryFilter(logging.Filter):
    """System categories from `system_level` up; user categories (functions, user loggers) from `user_level`."""

    def __init__(self, system_level: int, user_level: int) -> None:
        super().__init__()
        self.system_level, self.user_level = system_level, user_level

    def filter(self, record: logging.LogRecord) -> bool:
        system = record.name.startswith(SYSTEM_PREFIXES)
        return record.levelno >= (self.system_level if system else self.user_level)


def setup_console(verbose: bool = False, user_level: int = logging.INFO, stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(ConsoleFormatter())
    handler.addFilter(CategoryFilter(logging.INFO if verbose else logging.WARNING, user_level))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, ConsoleFormatter)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else min(user_level, logging.INFO))
    return handler


def say(text: str = "") -> None:
    """A plain console line (banners, the Functions block), flushed at once."""
    print(text, flush=True)
