"""Which log records the console shows, and how (functions-host.md §8, host.json logging.logLevel)."""

from __future__ import annotations

import io
import logging

import pytest

from funcemu.console import (
    CategoryFilter,
    ConsoleFormatter,
    apply_log_levels,
    current_function,
    in_ci,
    setup_console,
)

NONE = logging.CRITICAL + 10


def record(name: str, level: int, message: str = "m") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def shows(rules: dict[str, int], name: str, level: int, *, function: str | None = None,
          system: int = logging.WARNING, user: int = logging.INFO) -> bool:
    token = current_function.set(function)
    try:
        return CategoryFilter(system, user, rules).filter(record(name, level))
    finally:
        current_function.reset(token)


@pytest.mark.parametrize("name, level, expected", [
    ("funcemu.host", logging.INFO, False), ("funcemu.host", logging.WARNING, True),
    ("aiohttp.access", logging.INFO, False), ("Function.f", logging.INFO, True),
    ("root", logging.INFO, True), ("my.module", logging.DEBUG, False),
])
def test_core_tools_defaults(name: str, level: int, expected: bool) -> None:
    assert shows({}, name, level) is expected


@pytest.mark.parametrize("rules, name, level, function, expected", [
    ({"function": logging.WARNING}, "Function.f", logging.INFO, None, False),
    ({"function": logging.WARNING}, "root", logging.INFO, "f", False),          # Function.f.User
    ({"function": logging.WARNING}, "root", logging.INFO, None, True),          # outside an invocation
    ({"function": logging.WARNING, "function.f": logging.INFO}, "Function.f", logging.INFO, None, True),
    ({"function.f.user": NONE}, "my.lib", logging.ERROR, "f", False),
    ({"function.f.user": NONE}, "Function.f", logging.INFO, None, True),
    ({"default": logging.ERROR}, "Function.f", logging.WARNING, None, False),
])
def test_host_json_category_rules(rules: dict[str, int], name: str, level: int, function: str | None,
                                  expected: bool) -> None:
    assert shows(rules, name, level, function=function) is expected


def test_every_line_of_a_record_gets_the_utc_timestamp() -> None:
    item = record("root", logging.INFO, "first\nsecond")
    item.created = 0.5
    assert ConsoleFormatter().format(item) == "[1970-01-01T00:00:00.500Z] first\n[1970-01-01T00:00:00.500Z] second"


def test_printed_lines_are_console_lines_and_a_flushed_prompt_passes_through() -> None:
    """print() in the app is the worker's stdout: each line a `Host.Function.Console` record (§3.11)."""
    from funcemu.console import ConsoleStdout

    raw, shown = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(shown)
    handler.setFormatter(ConsoleFormatter())
    logger = logging.getLogger("Host.Function.Console")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    out = ConsoleStdout(raw)
    echo = logging.StreamHandler(out)  # a handler writing to sys.stdout must not loop
    logger.addHandler(echo)
    try:
        print("two\nlines", file=out)
        print("partial", end="", file=out)
        print(" done", file=out)
        print("(Pdb) ", end="", file=out, flush=True)
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(echo)
    lines = shown.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["two", "lines", "partial done"]
    assert all(line.startswith("[") and line[24:26] == "Z]" for line in lines)
    assert raw.getvalue() == "two\nlines\npartial done\n(Pdb) "  # the echo handler's lines, then the prompt


@pytest.mark.parametrize("message", ["Worker process started and initialized.",
                                     "host lock lease acquired by instance ID 'abc'."])
def test_two_messages_are_always_shown(message: str) -> None:
    """Core Tools shows these whatever the levels and rules (docs §8)."""
    assert CategoryFilter(NONE, NONE, {"default": NONE}).filter(record("funcemu.cli", logging.INFO, message))
    assert not CategoryFilter(NONE, NONE).filter(record("funcemu.cli", logging.INFO, "Worker process started"))


@pytest.mark.parametrize("environ, expected", [
    ({}, False), ({"CI": ""}, False), ({"CI": "true"}, True), ({"CONTINUOUS_INTEGRATION": "1"}, True),
    ({"BUILD_NUMBER": "12"}, True), ({"RUN_ID": "x"}, True),
])
def test_ci_environments(environ: dict[str, str], expected: bool) -> None:
    assert in_ci(environ) is expected


def shown_after(user_level: int | None, levels: dict[str, int], name: str, level: int) -> bool:
    root_level = logging.getLogger().level
    handler = setup_console(user_level=user_level, stream=io.StringIO())
    try:
        apply_log_levels(handler, levels)
        token = current_function.set("f")
        try:
            return all(f.filter(record(name, level)) for f in handler.filters if isinstance(f, logging.Filter))
        finally:
            current_function.reset(token)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)


@pytest.mark.parametrize("user_level, levels, name, level, expected", [
    (None, {"default": logging.WARNING}, "root", logging.INFO, False),         # default sets the user level
    (logging.INFO, {"default": logging.WARNING}, "root", logging.INFO, True),  # unless it was given
    (logging.INFO, {"default": logging.WARNING}, "funcemu.host", logging.INFO, False),
    (logging.DEBUG, {}, "root", logging.DEBUG, True),
    (logging.WARNING, {}, "Function.f", logging.INFO, False),
    (logging.DEBUG, {"function": logging.WARNING}, "root", logging.INFO, False),  # host.json Function wins
])
def test_explicit_user_level_and_host_json(user_level: int | None, levels: dict[str, int], name: str, level: int,
                                           expected: bool) -> None:
    assert shown_after(user_level, levels, name, level) is expected
