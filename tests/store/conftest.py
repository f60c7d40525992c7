"""Azurite for the store tests.

`azurite` (session) is the session's Azurite from `azurite_support.session_azurite` (an already running
one, or the npm package started in memory); it sets FUNCEMU_TEST_AZURITE_CONNECTION for the session, so
the conformance suite's `azure` parameter runs. Without Azurite the tests that need it are skipped with
the reason.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from azurite_support import session_azurite

from funcemu.testing.azurite import Azurite

if TYPE_CHECKING:
    from funcemu.durable.store.azure import AzureStore

T = TypeVar("T")


@pytest.fixture(scope="session")
def azurite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """The session's Azurite (see the module docstring); `.connection_string` connects to it."""
    with session_azurite(request.config.rootpath, tmp_path_factory) as found:
        yield found


@pytest.fixture(autouse=True)
def _azurite_for_azure_params(request: pytest.FixtureRequest) -> None:
    """Start Azurite before a test parametrized with store="azure" (the conformance suite) reads ENV."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("store") == "azure":
        request.getfixturevalue("azurite")


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    """Run coroutines on one event loop per test (the Azure clients bind to their loop)."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


@pytest.fixture
def hub_name() -> str:
    return "t" + uuid.uuid4().hex[:16]


@pytest.fixture
def azure_store(azurite: Azurite, hub_name: str,
                run: Callable[[Awaitable[Any]], Any]) -> Iterator[AzureStore]:
    """An open AzureStore on a fresh hub, deleted afterwards."""
    from funcemu.durable.store.azure import AzureStore

    store = AzureStore(azurite.connection_string, hub_name)
    run(store.open())
    try:
        yield store
    finally:
        run(store.delete_task_hub())
        run(store.close())
