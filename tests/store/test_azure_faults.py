"""Faults of the Azure Storage store, end to end with `funcemu start --storage azure` on the durable test app:
no storage listening, Azurite stopped and restarted (persisting to disk) while orchestrations run, and two
funcemu processes sharing one task hub (ETag races on the History sentinel are replayed, never surfaced)."""

from __future__ import annotations

import json
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azurite_support import PersistentAzurite, azurite_command, delete_hub
from durable_support import (
    APP,
    assert_ran_once,
    executions,
    expected_steps,
    history_of,
    launch,
    raise_event,
    start_id,
    unique,
    wait_status,
    wait_until,
)
from support import HostProcess, run_cli

from funcemu.testing.azurite import ACCOUNT, Azurite

pytestmark = pytest.mark.azurite
STEPS = [f"steps-{index}" for index in range(4)]
WAITER, TIMER = "outage-waiter", "outage-timer"
HUB_OVERRIDE = "AzureFunctionsJobHost__extensions__durableTask__hubName"


def runs(gate: Path) -> list[str]:
    log = gate / "runs.log"
    return log.read_text().split() if log.exists() else []


def host_env(connection: str, hub: str, **extra: str) -> dict[str, str]:
    return {"AzureWebJobsStorage": connection, HUB_OVERRIDE: hub, **extra}


# no storage listening


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port bound here but not listening: connections to it are refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def dead_connection(port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey=a2V5;"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};QueueEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")


def assert_one_line_naming(done: Any, endpoint: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cannot reach the Azure Storage ") and f" endpoint {endpoint}: " in lines[0], lines
    assert "Is Azurite running" in lines[0]


def test_no_storage_listening_is_one_line_naming_the_endpoint(dead_port: int) -> None:
    done = run_cli("start", "--app", str(APP), "--port", "0", "--storage", "azure",
                   env={"AzureWebJobsStorage": dead_connection(dead_port)})

    assert_one_line_naming(done, f"http://127.0.0.1:{dead_port}/{ACCOUNT}")


def test_the_configured_connection_name_is_the_one_used(dead_port: int, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APP, app)
    host_json = json.loads((app / "host.json").read_text())
    host_json["extensions"]["durableTask"]["storageProvider"] = {"connectionName": "HubStorage"}
    (app / "host.json").write_text(json.dumps(host_json))

    done = run_cli("start", "--app", str(app), "--port", "0", "--storage", "azure",
                   env={"HubStorage": dead_connection(dead_port)})

    assert_one_line_naming(done, f"http://127.0.0.1:{dead_port}/{ACCOUNT}")


def test_development_storage_without_azurite_names_the_default_endpoint() -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 10002)) == 0:
            pytest.skip("something listens on 127.0.0.1:10002 (an Azurite of this machine)")

    done = run_cli("start", "--app", str(APP), "--port", "0", "--storage", "azure",
                   env={"AzureWebJobsStorage": "UseDevelopmentStorage=true"})

    assert_one_line_naming(done, f"http://127.0.0.1:10002/{ACCOUNT}")


# Azurite stopped and restarted while orchestrations run


@pytest.fixture
def persistent_azurite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PersistentAzurite]:
    command = azurite_command(request.config.rootpath)
    if command is None:
        pytest.skip("the azurite npm package is not installed: run `npm install` in the repo root")
    location = tmp_path / "azurite-data"
    location.mkdir()
    azurite = PersistentAzurite(command, location).start()
    try:
        yield azurite
    finally:
        azurite.stop()


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    folder = tmp_path / "gate"
    folder.mkdir()
    return folder


def start_outage_work(host: HostProcess) -> None:
    """Gated chains (an activity in flight at the outage), an instance waiting for an event, a timer."""
    for key in STEPS:
        start_id(host, "durable_steps", key, key)
    start_id(host, "wait_event", {}, WAITER)
    start_id(host, "short_timer", 2.0, TIMER)


def test_azurite_restart_while_orchestrations_run_loses_nothing(persistent_azurite: PersistentAzurite,
                                                                tmp_path: Path, gate: Path) -> None:
    env = host_env(persistent_azurite.connection_string, "OutageHub", E2E_GATE_DIR=str(gate))
    host = launch(tmp_path / "data", "azure", env)
    try:
        start_outage_work(host)
        wait_until(lambda: sorted(runs(gate)) == STEPS, 20, "every gated activity to be in flight")
        wait_status(host, WAITER, "Running")
        persistent_azurite.stop()
        mark = len(host.lines)
        (gate / "open").touch()   # the gated activities finish while storage is away
        host.wait_for_log(r"Azure Storage is unreachable while", timeout=20, since=mark)
        persistent_azurite.start()
        assert raise_event(host, WAITER, "Approval", "after the outage").status == 202
        results = {key: wait_status(host, key, timeout=60) for key in [*STEPS, WAITER, TIMER]}
    finally:
        host.stop()

    for key in STEPS:
        assert results[key]["runtimeStatus"] == "Completed", results[key]
        assert results[key]["output"] == expected_steps(key)
        assert_ran_once(results[key], completed_tasks=2 + 1 + 5)
    assert sorted(runs(gate)) == STEPS, "a gated activity that finished during the outage ran again"
    assert results[WAITER]["output"] == {"approved": '"after the outage"'}
    assert results[TIMER]["runtimeStatus"] == "Completed" and len(history_of(results[TIMER], "TimerFired")) == 1
    for key in (WAITER, TIMER):
        assert_ran_once(results[key], completed_tasks=0)


# two funcemu processes on one task hub


@pytest.fixture
def shared_hub(azurite: Azurite) -> Iterator[str]:
    hub = "shared" + uuid.uuid4().hex[:12]
    yield hub
    delete_hub(azurite.connection_string, hub)


def test_two_hosts_on_one_hub_share_the_work_and_commit_each_episode_once(
        azurite: Azurite, shared_hub: str, tmp_path: Path) -> None:
    env = host_env(azurite.connection_string, shared_hub)
    hosts = [launch(tmp_path / "first", "azure", env)]
    try:
        hosts.append(launch(tmp_path / "second", "azure", env))
        fans = [start_id(hosts[index % 2], "fan_out", 30, unique("fan")) for index in range(6)]
        steps = [start_id(hosts[index % 2], "durable_steps", f"k{index}", unique("steps")) for index in range(6)]
        results = {key: wait_status(hosts[0], key, timeout=60) for key in fans + steps}
    finally:
        for host in hosts:
            host.stop()

    for key in fans:
        assert results[key]["runtimeStatus"] == "Completed" and results[key]["output"] == 2 * sum(range(30))
        assert_ran_once(results[key], completed_tasks=30)
    for index, key in enumerate(steps):
        assert results[key]["output"] == expected_steps(f"k{index}"), results[key]
        assert_ran_once(results[key], completed_tasks=2 + 1 + 5)
    for host in hosts:
        assert executions(host, "double") > 0, f"a host did no activity work:\n{host.log[-3000:]}"
        assert executions(host, "fan_out") + executions(host, "durable_steps") > 0, "a host ran no orchestration"
        assert not any("(Failed," in line for line in host.lines), host.log[-3000:]
    assert sum(executions(host, "double") for host in hosts) == 6 * 30 + 6 * (2 + 5), "an activity ran twice"


RACE_APP = """
import os
import time
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def hold_while_gated() -> None:
    \"\"\"In the host started with RACE_GATE: say so, then block (the whole host) until the gate opens.\"\"\"
    gate = os.environ.get("RACE_GATE")
    if not gate:
        return
    (Path(gate) / "held").touch()
    deadline = time.monotonic() + 30
    while not (Path(gate) / "open").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


@app.orchestration_trigger(context_name="context")
def two_events(context: df.DurableOrchestrationContext):
    first = yield context.wait_for_external_event("E")
    if not context.is_replaying:
        hold_while_gated()
    second = yield context.wait_for_external_event("E")
    return [first, second]
"""


@pytest.fixture
def race_app(tmp_path: Path) -> Path:
    app = tmp_path / "race_app"
    app.mkdir()
    (app / "function_app.py").write_text(RACE_APP)
    (app / "host.json").write_text(json.dumps({"version": "2.0"}))
    return app


def events_in(host: HostProcess, instance_id: str) -> int:
    reply = host.call("GET", f"/runtime/webhooks/durabletask/instances/{instance_id}?showHistory=true")
    return len(history_of(reply.json(), "EventRaised")) if reply.status in (200, 202) else -1


def test_a_checkpoint_that_loses_the_etag_race_is_replayed_not_failed(
        azurite: Azurite, shared_hub: str, race_app: Path, gate: Path, tmp_path: Path) -> None:
    """The first host runs an episode with the first event and is held inside it; the second host, started
    meanwhile, commits an episode with the second event; the first host's checkpoint then meets a moved
    sentinel (412), and its episode is replayed on the new history instead of failing."""
    env = host_env(azurite.connection_string, shared_hub)
    first = HostProcess(race_app, "--storage", "azure", "--data-dir", str(tmp_path / "first"), "--verbose",
                        env={**env, "RACE_GATE": str(gate)}).start()
    second: HostProcess | None = None
    try:
        instance_id = start_id(first, "two_events", None, unique("race"))
        wait_status(first, instance_id, "Running")
        assert raise_event(first, instance_id, "E", "to the first").status == 202
        wait_until(lambda: (gate / "held").exists(), 15, "the first host to hold its episode")
        second = HostProcess(race_app, "--storage", "azure", "--data-dir", str(tmp_path / "second"),
                             env=env).start()
        assert raise_event(second, instance_id, "E", "to the second").status == 202
        wait_until(lambda: events_in(second, instance_id) == 1, 15, "the second host's checkpoint")
        (gate / "open").touch()
        final = wait_status(second, instance_id, timeout=30)
        first.wait_for_log(rf"instance '{instance_id}': checkpoint lost a race; replaying", timeout=10)
    finally:
        first.stop()
        if second is not None:
            second.stop()

    assert final["runtimeStatus"] == "Completed", final
    assert final["output"] == ['"to the second"', '"to the first"']  # the client sends JSON text
    assert_ran_once(final, completed_tasks=0)
    assert len(history_of(final, "EventRaised")) == 2
