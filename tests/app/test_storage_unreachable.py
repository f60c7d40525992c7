"""Without reachable storage (as with `make start` and no Azurite) the app still serves the four patterns:
only the storage-backed functions cannot work, and the host says so once, naming the function, the
connection setting and the endpoint."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from funcemu.testing import DurableClient, EmulatorHost

pytestmark = pytest.mark.emulator_only


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A port bound here and not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def offline_host(
    funcemu_app_path: Path, closed_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorHost]:
    """The app on the embedded SQLite store (as `make start` runs it), its storage setting unreachable."""
    endpoints = ";".join(
        f"{service}Endpoint=http://127.0.0.1:{closed_port}/devstoreaccount1"
        for service in ("Blob", "Queue", "Table")
    )
    dead = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;{endpoints};"
    host = EmulatorHost(
        funcemu_app_path,
        storage="sqlite",
        data_dir=tmp_path_factory.mktemp("offline"),
        env={"AzureWebJobsStorage": dead},
    )
    with host:
        yield host


def test_the_patterns_run_without_storage(offline_host: EmulatorHost, funcemu_timeout: float) -> None:
    client = DurableClient(offline_host.http, timeout=funcemu_timeout)
    order = {
        "orderId": "OFF-1",
        "customer": "ada@example.com",
        "items": [{"sku": "B", "quantity": 1, "unitPrice": 2}],
    }

    confirmed = client.wait_for_output(client.start_via("/api/orders", json=order))
    counted = client.wait_for_output(
        client.start_via("/api/word-counts", json={"documents": [{"name": "a", "text": "x y x"}]})
    )

    assert confirmed["status"] == "confirmed"
    assert counted["totalWords"] == 3
    assert offline_host.is_running()


def test_the_listener_error_names_function_setting_and_endpoint(
    offline_host: EmulatorHost, closed_port: int
) -> None:
    log = offline_host.log_since(0)

    assert "The listener for function 'Functions.start_order_from_inbox' was unable to start." in log
    assert (
        f"Function 'start_order_from_inbox' (binding 'message'): the queue endpoint "
        f"http://127.0.0.1:{closed_port}/devstoreaccount1 of connection setting 'AzureWebJobsStorage' "
        "cannot be used:"
    ) in log
    assert (
        "Functions 'read_word_count_report' (binding 'report') and 'write_word_count_report' (binding 'report'): "
        f"the blob endpoint http://127.0.0.1:{closed_port}/devstoreaccount1"
    ) in log
    assert log.count("was unable to start") == 1
