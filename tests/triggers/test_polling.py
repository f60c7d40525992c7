"""Queue polling pieces: host.json options, the host's back-off, message encoding, poison names."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import pytest

from funcemu.config import ConfigError, HostJson
from funcemu.triggers.polling import Backoff, QueueOptions, decode_body, encode_body, poison_name


def host_json(queues: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> HostJson:
    data = {"version": "2.0", "extensions": {"queues": queues}} if queues is not None else {"version": "2.0"}
    return HostJson(data, Path("/app/host.json"), environ or {})


def test_defaults_are_the_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    options = QueueOptions.from_host_json(host_json())
    assert options == QueueOptions(batch_size=16, new_batch_threshold=32, max_polling_interval=60.0,
                                   visibility_timeout=0.0, max_dequeue_count=5, message_encoding="base64")


def test_host_json_values() -> None:
    options = QueueOptions.from_host_json(host_json({
        "batchSize": 4, "newBatchThreshold": 1, "maxPollingInterval": "00:00:02", "visibilityTimeout": "00:00:30",
        "maxDequeueCount": 2, "messageEncoding": "none"}))
    assert (options.batch_size, options.new_batch_threshold, options.max_polling_interval) == (4, 1, 2.0)
    assert (options.visibility_timeout, options.max_dequeue_count, options.message_encoding) == (30.0, 2, "none")


def test_milliseconds_are_accepted_for_intervals() -> None:
    assert QueueOptions.from_host_json(host_json({"maxPollingInterval": 2000})).max_polling_interval == 2.0


def test_environment_overrides_host_json() -> None:
    environ = {"AzureFunctionsJobHost__extensions__queues__batchSize": "3"}
    assert QueueOptions.from_host_json(host_json({"batchSize": 8}, environ)).batch_size == 3


@pytest.mark.parametrize(("queues", "key", "problem"), [
    ({"batchSize": 64}, "batchSize", "must be an integer from 1 to 32"),
    ({"maxDequeueCount": 0}, "maxDequeueCount", "must be an integer from 1"),
    ({"maxPollingInterval": "00:00:00.050"}, "maxPollingInterval", "of at least 0.1 s"),
    ({"visibilityTimeout": "soon"}, "visibilityTimeout", "must be a TimeSpan"),
    ({"messageEncoding": "utf8"}, "messageEncoding", "must be 'base64' or 'none'"),
])
def test_bad_options_name_the_key(queues: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        QueueOptions.from_host_json(host_json(queues))
    assert f"host.json: extensions.queues.{key} " in str(error.value)
    assert problem in str(error.value)


def test_backoff_grows_randomized_and_caps() -> None:
    backoff = Backoff(maximum=1.0, rand=lambda: 0.5)          # factor 1.0
    delays = [round(backoff.next(), 3) for _ in range(6)]
    assert delays == [0.2, 0.3, 0.5, 0.9, 1.0, 1.0]
    backoff.reset()
    assert round(backoff.next(), 3) == 0.2


def test_backoff_randomization_bounds() -> None:
    assert round(Backoff(10, rand=lambda: 0.0).next(), 3) == 0.18   # 0.1 + 0.8 * 0.1
    assert round(Backoff(10, rand=lambda: 1.0).next(), 3) == 0.22   # 0.1 + 1.2 * 0.1


def test_base64_encoding_round_trip() -> None:
    assert encode_body(b"hello", "base64") == base64.b64encode(b"hello").decode()
    assert decode_body("aGVsbG8=", "base64") == b"hello"
    assert decode_body("hello", "none") == b"hello"
    with pytest.raises(binascii.Error):
        decode_body("not base64!", "base64")


def test_poison_queue_names() -> None:
    assert poison_name("orders") == "orders-poison"
    assert poison_name("orders-poison") is None
    assert poison_name("q" * 60) is None
