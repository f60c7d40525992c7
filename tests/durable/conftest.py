"""Fixtures of the durable end-to-end tests: one host of the durable test app per module and store.

The `azure` runs keep the task hub (host.json's `EngineTests`) in the session's Azurite; the hub is
deleted before each module's host starts, so no module sees another's instances.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azurite_support import delete_hub, session_azurite
from durable_support import STORES, launch
from support import HostProcess

from funcemu.testing.azurite import Azurite

HUB_NAME = "EngineTests"
HOST_STORES = [*STORES, pytest.param("azure", marks=pytest.mark.azurite)]


@pytest.fixture(scope="session")
def azurite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """The session's Azurite, shared with tests/store (see azurite_support)."""
    with session_azurite(request.config.rootpath, tmp_path_factory) as found:
        yield found


@pytest.fixture(scope="module", params=HOST_STORES)
def durable_host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[HostProcess]:
    """`funcemu start` for the durable test app on the memory, sqlite or azure store, shared by one module."""
    env: dict[str, str] = {}
    if request.param == "azure":
        connection = request.getfixturevalue("azurite").connection_string
        delete_hub(connection, HUB_NAME)
        env["AzureWebJobsStorage"] = connection
    host = launch(tmp_path_factory.mktemp(f"data-{request.param}"), request.param, env)
    try:
        yield host
    finally:
        host.stop()

