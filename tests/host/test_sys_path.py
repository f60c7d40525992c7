"""The app root on sys.path (docs §1.2, §9.2): appended, as the worker's `sys.path.append(app_root)`, so
installed packages come first; indexing another app in the same process or a `function_app.py` in an
earlier sys.path entry never hands back the wrong script. Bad `@app.retry` settings fail indexing (§2.4)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from funcemu.app import AppLoadError, load_app

APP = """
import azure.functions as func
import helper

app = func.FunctionApp()


@app.route(route="{name}")
def {name}(req: func.HttpRequest) -> str:
    return helper.WHO
"""


def write_app(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "function_app.py").write_text(APP.replace("{name}", name))
    (folder / "helper.py").write_text(f"WHO = {name!r}\n")
    return folder


@pytest.fixture(autouse=True)
def _own_sys_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for module in ("function_app", "helper"):
        sys.modules.pop(module, None)


def test_the_app_root_is_appended(tmp_path: Path) -> None:
    root = write_app(tmp_path / "one", "one")
    before = list(sys.path)
    indexed = load_app(root)
    assert sys.path[-1] == str(root) and sys.path[0] == before[0]
    assert sys.path[:-1] == [p for p in before if p in sys.path]   # at most an earlier app's root went
    assert [f.name for f in indexed.functions] == ["one"]


def test_an_app_root_already_on_sys_path_stays_where_it_is(tmp_path: Path) -> None:
    root = write_app(tmp_path / "one", "one")
    sys.path.insert(0, str(root))
    before = list(sys.path)
    load_app(root)
    assert sys.path == before


def test_a_second_app_in_the_same_process_gets_its_own_script(tmp_path: Path) -> None:
    load_app(write_app(tmp_path / "one", "one"))
    second = write_app(tmp_path / "two", "two")
    indexed = load_app(second)
    assert [f.name for f in indexed.functions] == ["two"]
    assert str(tmp_path / "one") not in sys.path and sys.path[-1] == str(second)


def test_a_function_app_earlier_on_sys_path_does_not_shadow_the_script(tmp_path: Path) -> None:
    other = write_app(tmp_path / "started_here", "other")
    sys.path.insert(0, str(other))   # as `python -m funcemu` started in another app's folder
    indexed = load_app(write_app(tmp_path / "mine", "mine"))
    assert [f.name for f in indexed.functions] == ["mine"]


@pytest.mark.parametrize("settings, error", [
    ('strategy="fixed_delay", max_retry_count="x", delay_interval="00:00:01"', "ValueError: invalid literal"),
    ('strategy="fixed_delay", max_retry_count="2", delay_interval="1s"', "ValueError: time data '1s'"),
    ('strategy="exponential_backoff", max_retry_count="2", minimum_interval="00:00:01"', "TypeError: "),
])
def test_retry_settings_the_worker_cannot_read_fail_indexing(tmp_path: Path, settings: str, error: str) -> None:
    tmp_path.joinpath("function_app.py").write_text(
        "import azure.functions as func\napp = func.FunctionApp()\n\n\n"
        f"@app.retry({settings})\n"
        "@app.timer_trigger(schedule='0 0 * * * *', arg_name='timer')\n"
        "def tick(timer: func.TimerRequest) -> None:\n    pass\n")
    with pytest.raises(AppLoadError) as raised:
        load_app(tmp_path)
    assert f"Exception: {error}" in str(raised.value)
