"""Test Azure Functions apps end to end: the pytest plugin's fixtures and the helpers they return.

The plugin (`funcemu.testing.plugin`) is registered through the `pytest11` entry point, so installing
funcemu is enough: tests ask for `funcemu`, `durable_client`, `clock` or `azurite`.
"""

from funcemu.testing.azurite import Azurite
from funcemu.testing.client import DurableApiError, DurableClient, OrchestrationFailed, OrchestrationTimeout
from funcemu.testing.clock import Clock
from funcemu.testing.host import EmulatorHost, Host, HostStartError, RemoteHost
from funcemu.testing.httpclient import HttpClient, Response
from funcemu.testing.replay import HistoryDiverged, replay_history

__all__ = [
    "Azurite",
    "Clock",
    "DurableApiError",
    "DurableClient",
    "EmulatorHost",
    "Host",
    "HostStartError",
    "HistoryDiverged",
    "HttpClient",
    "OrchestrationFailed",
    "OrchestrationTimeout",
    "RemoteHost",
    "Response",
    "replay_history",
]
