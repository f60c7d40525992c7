"""pytest plugin (entry point `funcemu`): run any Azure Functions app's tests against a real host.

Fixtures: `funcemu` (the host, checked alive, with every instance ended and purged before each test),
`funcemu_host` (the same host, session-scoped: started once), `durable_client`, `clock` (emulator
only) and `azurite`. Options (group "funcemu"): `--funcemu-app`, `--funcemu-storage`, `--funcemu-url`,
`--funcemu-key`, `--funcemu-timeout`, `--funcemu-real-clock`, `--funcemu-arg`. With `--funcemu-url` the
tests run against that host (a `func start`, an app on Azure) and tests marked `emulator_only` are
skipped.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from funcemu.testing import azurite as azurite_process
from funcemu.testing.azurite import Azurite
from funcemu.testing.client import DurableClient
from funcemu.testing.clock import Clock
from funcemu.testing.host import STORAGE_KINDS, EmulatorHost, Host, HostStartError, RemoteHost

HOSTS = pytest.StashKey[list[Host]]()
LOG_START = pytest.StashKey[dict[int, int]]()
START_ERROR = pytest.StashKey[str]()
LOG_TAIL_LINES = 300
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("funcemu", "funcemu: test an Azure Functions app on a real host")
    group.addoption(
        "--funcemu-app",
        metavar="PATH",
        default=None,
        help="app folder (with function_app.py) to host; default: the nearest of the rootdir and "
        "its parents (up to the repository root) that has one",
    )
    group.addoption(
        "--funcemu-storage",
        choices=STORAGE_KINDS,
        default="sqlite",
        help="store of the emulator: memory, sqlite (default, in a fresh temp folder) or "
        "azure (AzureWebJobsStorage, else Azurite)",
    )
    group.addoption(
        "--funcemu-url",
        metavar="URL",
        default=os.environ.get("FUNCEMU_URL"),
        help="test a host that is already running (func start, an app on Azure) instead "
        "of starting funcemu; skips tests marked emulator_only",
    )
    group.addoption(
        "--funcemu-key",
        metavar="KEY",
        default=os.environ.get("FUNCEMU_KEY"),
        help="key sent as x-functions-key (for an app on Azure: its master key)",
    )
    group.addoption(
        "--funcemu-timeout",
        metavar="SECONDS",
        type=float,
        default=None,
        help="default wait for orchestrations (10 s on funcemu, 120 s with --funcemu-url)",
    )
    group.addoption(
        "--funcemu-real-clock",
        action="store_true",
        default=False,
        help="run funcemu on the real clock (default: a virtual clock that skips to the next "
        "durable timer while a test waits for a result, and that tests can advance)",
    )
    group.addoption(
        "--funcemu-arg",
        metavar="ARG",
        action="append",
        default=[],
        help="extra argument for `funcemu start` (repeatable), e.g. --funcemu-arg=--verbose",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "emulator_only: needs the funcemu emulator (skipped with --funcemu-url)"
    )
    config.addinivalue_line("markers", "azurite: needs Azurite (started from the npm package when absent)")
    config.stash[HOSTS] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    url = config.getoption("funcemu_url")
    if not url:
        return
    skip = pytest.mark.skip(reason=f"needs the funcemu emulator; testing {url}")
    for item in items:
        if item.get_closest_marker("emulator_only"):
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[LOG_START] = {id(host): host.log_position() for host in item.config.stash[HOSTS]}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and "funcemu_host" in getattr(item, "fixturenames", ()):
        starts = item.stash.get(LOG_START, {})
        for host in item.config.stash[HOSTS]:
            _attach_log(report, host, starts.get(id(host), host.ready_position))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    for host in session.config.stash.get(HOSTS, []):
        if isinstance(host, EmulatorHost):
            host.stop()


def _attach_log(report: pytest.TestReport, host: Host, start: int) -> None:
    text = _tail(host.log_since(start))
    if not text:
        return
    title = f"funcemu host log ({host.url})"
    add_section = getattr(report.longrepr, "addsection", None)  # a traceback's repr has one
    if callable(add_section):
        add_section(title, text)
    else:
        report.sections.append((title, text))


def _tail(log: str) -> str:
    lines = log.splitlines()
    if len(lines) > LOG_TAIL_LINES:
        lines = [f"... ({len(lines) - LOG_TAIL_LINES} earlier lines left out)", *lines[-LOG_TAIL_LINES:]]
    return "\n".join(lines)


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def funcemu_app_path(pytestconfig: pytest.Config) -> Path:
    """The app folder to host. Override this fixture to choose it in code."""
    given = pytestconfig.getoption("funcemu_app")
    if given:
        folder = Path(given).resolve()
        if not (folder / "function_app.py").is_file():
            pytest.fail(
                f"{folder} (--funcemu-app) has no function_app.py: pass --funcemu-app PATH to an app "
                "folder, or --funcemu-url URL to test a host that is already running",
                pytrace=False,
            )
        return folder
    found = find_app_folder(pytestconfig.rootpath)
    if found is None:
        pytest.fail(
            f"no function_app.py in the rootdir {pytestconfig.rootpath} or its parents (up to the "
            "repository root): pass --funcemu-app PATH to an app folder, or --funcemu-url URL to test "
            "a host that is already running",
            pytrace=False,
        )
    return found


def find_app_folder(start: Path) -> Path | None:
    """The nearest of `start` and its parents holding function_app.py; the search stops at the
    filesystem root or at a folder with `.git` (the repository root, which is still searched)."""
    for folder in (start, *start.parents):
        if (folder / "function_app.py").is_file():
            return folder
        if (folder / ".git").exists():
            return None
    return None


@pytest.fixture(scope="session")
def funcemu_start_args(pytestconfig: pytest.Config) -> list[str]:
    """Extra arguments for `funcemu start`. Override to add flags such as `--time-skipping`."""
    return list(pytestconfig.getoption("funcemu_arg"))


@pytest.fixture(scope="session")
def funcemu_host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, funcemu_start_args: list[str]
) -> Iterator[Host]:
    """One host for the test session: started here on a free port with a fresh store, or --funcemu-url."""
    config = request.config
    url, key = config.getoption("funcemu_url"), config.getoption("funcemu_key")
    if url:
        yield RemoteHost(url, key)
        return
    storage = config.getoption("funcemu_storage")
    try:
        app_path = request.getfixturevalue("funcemu_app_path")
    except pytest.fail.Exception as error:  # no app: `funcemu` shows it once, then refers to it
        config.stash[START_ERROR] = str(error.msg)
        yield EmulatorHost(config.rootpath, storage=storage)  # never started
        return
    clock_args = [] if config.getoption("funcemu_real_clock") else ["--time-skipping"]
    env = {"AzureWebJobsStorage": _azure_connection(request)} if storage == "azure" else {}
    host = EmulatorHost(
        app_path,
        storage=storage,
        data_dir=tmp_path_factory.mktemp("funcemu-data"),
        extra_args=[*clock_args, *funcemu_start_args],
        env=env,
    )
    try:
        host.start()
    except HostStartError as error:
        config.stash[START_ERROR] = str(error)  # `funcemu` shows it once, then refers to it
        yield host
        return
    config.stash[HOSTS].append(host)
    yield host
    host.stop()


@pytest.fixture
def funcemu(request: pytest.FixtureRequest, funcemu_host: Host, funcemu_timeout: float) -> Host:
    """The session's host, checked alive; on funcemu every instance is ended and purged first."""
    start_error = request.config.stash.get(START_ERROR, None)
    if start_error is not None:
        request.config.stash[START_ERROR] = "funcemu host did not start: see the first test that used it"
        pytest.fail(start_error, pytrace=False)
    if not funcemu_host.is_running():
        code = getattr(funcemu_host, "exit_code", None)
        pytest.fail(
            f"the funcemu host exited (status {code}); its output:\n{_tail(funcemu_host.log_since(0))}",
            pytrace=False,
        )
    if funcemu_host.is_emulator:
        DurableClient(funcemu_host.http, timeout=funcemu_timeout).reset()
        control = _time_skipping_clock(funcemu_host)
        if control is not None:
            control.set_auto_skip(False)  # time skips only while a test waits for a result
    return funcemu_host


@pytest.fixture(scope="session")
def funcemu_timeout(pytestconfig: pytest.Config) -> float:
    given = pytestconfig.getoption("funcemu_timeout")
    if given is not None:
        return float(given)
    return 120.0 if pytestconfig.getoption("funcemu_url") else 10.0


@pytest.fixture
def durable_client(funcemu: Host, funcemu_timeout: float) -> DurableClient:
    """Start, wait for, raise events to and inspect orchestrations, over the HTTP management API."""
    return DurableClient(
        funcemu.http,
        timeout=funcemu_timeout,
        poll_interval=0.25 if funcemu.is_emulator else 1.0,
        clock=_time_skipping_clock(funcemu),
    )


@pytest.fixture
def clock(funcemu: Host) -> Clock:
    """The emulator's clock (`now`, `advance`); skips the test where the host has no clock control."""
    if not funcemu.is_emulator:
        pytest.skip("clock control needs the funcemu emulator")
    control = Clock(funcemu.http)
    if not control.available():
        pytest.skip("this funcemu host has no clock control (GET /admin/funcemu/clock answered 404)")
    if not control.supports_time_skipping:
        pytest.skip("this funcemu host runs on the real clock (--funcemu-real-clock)")
    return control


def _time_skipping_clock(host: Host) -> Clock | None:
    """The host's clock if it is virtual; asked once per host, since the mode is fixed at start."""
    if not host.is_emulator:
        return None
    if id(host) not in _SKIPPING:
        control = Clock(host.http)
        _SKIPPING[id(host)] = control.available() and control.supports_time_skipping
    return Clock(host.http) if _SKIPPING[id(host)] else None


_SKIPPING: dict[int, bool] = {}


@pytest.fixture(scope="session")
def azurite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """An Azurite for the session (reused on 10000-10002, else started from npm); sets AzureWebJobsStorage."""
    found = azurite_process.find_running()
    if found is None:
        executable = azurite_process.find_executable(request.config.rootpath)
        if executable is None:
            pytest.skip(
                "Azurite is not listening on 127.0.0.1:10000-10002 and its npm package is not "
                "installed: run `npm install` (or `docker compose up -d azurite`)"
            )
        found = azurite_process.start(executable, tmp_path_factory.mktemp("azurite"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AzureWebJobsStorage", found.connection_string)
        yield found
    found.stop()


def _azure_connection(request: pytest.FixtureRequest) -> str:
    """AzureWebJobsStorage when it names a real account; otherwise the session's Azurite."""
    configured = os.environ.get("AzureWebJobsStorage", "")
    if configured and configured.replace(" ", "") != DEVELOPMENT_STORAGE:
        return configured
    found: Azurite = request.getfixturevalue("azurite")
    return found.connection_string
