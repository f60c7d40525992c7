"""`funcemu durable`: input that looks like broken JSON is refused, and a rewind that cannot happen says why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import HostProcess

from funcemu.cli import main

APP = Path(__file__).parent / "apps" / "cli_app"
WEBHOOK = "/runtime/webhooks/durabletask"


@pytest.mark.parametrize("text", ["{bad json", "  [1, 2", '{"a": 1,}'])
def test_broken_json_input_is_refused(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    # nothing listens there: the input is checked before any request
    status = main(["durable", "start-new", "--function-name", "hello", "--input", text,
                   "--base-url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("funcemu durable start-new: --input: not valid JSON (")
    assert "plain text is sent as a string" in err


def test_broken_json_event_data_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["durable", "raise-event", "x", "--event-name", "Go", "--event-data", "{oops",
                   "--base-url", "http://127.0.0.1:9"])
    assert status == 2 and "--event-data: not valid JSON" in capsys.readouterr().err


def test_help_says_plain_text_is_a_string(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["durable", "start-new", "--help"])
    assert "sent as a string" in " ".join(capsys.readouterr().out.split())


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    with HostProcess(APP, "--storage", "memory", "--time-skipping") as running:
        yield running


def test_plain_text_input_is_still_a_string(host: HostProcess, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["durable", "start-new", "--function-name", "hello", "--input", "Ada", "--id", "txt-1",
                   "--base-url", host.url])
    assert status == 0
    reply = host.call("GET", f"{WEBHOOK}/instances/txt-1?showInput=true")
    assert json.loads(reply.body)["input"] == json.dumps("Ada")  # JSON text in a string, as the Python client sends


def test_rewinding_an_instance_that_did_not_fail(host: HostProcess, capsys: pytest.CaptureFixture[str]) -> None:
    assert host.call("POST", f"{WEBHOOK}/orchestrators/hello/rw-1", json.dumps(["Ada"])).status == 202
    assert host.wait_for("rw-1")["runtimeStatus"] == "Completed"
    capsys.readouterr()

    status = main(["durable", "rewind", "rw-1", "--base-url", host.url])

    assert status == 1
    assert capsys.readouterr().err == ("funcemu durable rewind: instance 'rw-1' has ended without failing, so it "
                                       "cannot be rewound: only Failed instances can be rewound (410)\n")
