"""Trigger values and output payloads, converted with azure-functions' own converters as the worker does."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from funcemu.app import FunctionSpec
from funcemu.triggers.blob import BlobPathError, BlobPattern, host_queue_name
from funcemu.triggers.convert import decode_input, encode_output
from funcemu.triggers.outputs import OutputBindingError, queue_messages, table_entities, table_row
from funcemu.triggers.queue import QueueNameError, queue_name, trigger_data
from funcemu.triggers.schedule import parse_schedule
from funcemu.triggers.timer import timer_value

SYSTEM = {"DequeueCount": 2, "Id": "m-1", "PopReceipt": "pr", "InsertionTime": "2024-05-01T10:00:00+00:00",
          "ExpirationTime": "2024-05-08T10:00:00+00:00", "NextVisibleTime": "2024-05-01T10:10:00+00:00"}


def spec_of(app: func.FunctionApp) -> FunctionSpec:
    fn = app.get_functions()[0]
    bindings = [json.loads(raw) for raw in fn.get_raw_bindings()]
    trigger = next(b for b in bindings if b["type"].endswith("Trigger"))
    return FunctionSpec(name=str(fn.get_function_name()), function=fn, callable=fn.get_user_function(),
                        bindings=bindings, trigger=trigger, directory="", is_async=False, needs_context=False)


def queue_spec(annotation: Any) -> FunctionSpec:
    app = func.FunctionApp()

    def handler(msg):  # type: ignore[no-untyped-def]
        return None
    handler.__annotations__ = {"msg": annotation}   # this module's annotations are strings (__future__)
    app.queue_trigger(arg_name="msg", queue_name="orders", connection="Storage")(handler)
    return spec_of(app)


def decode_queue(spec: FunctionSpec, body: bytes) -> Any:
    datum, metadata, _ = trigger_data(body, SYSTEM)
    return decode_input(spec, spec.trigger, datum, metadata)


def test_queue_message_is_the_sdk_type_with_its_metadata() -> None:
    message = decode_queue(queue_spec(func.QueueMessage), b'{"order": 7}')
    assert isinstance(message, func.QueueMessage)
    assert message.get_json() == {"order": 7}
    assert (message.id, message.dequeue_count, message.pop_receipt) == ("m-1", 2, "pr")
    assert message.insertion_time == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert message.expiration_time is not None and message.expiration_time.tzinfo is not None


def test_unannotated_queue_parameter_also_gets_a_queue_message() -> None:
    assert isinstance(decode_queue(queue_spec(Any), b"hi"), func.QueueMessage)


def test_a_str_parameter_gets_the_raw_body() -> None:
    assert decode_queue(queue_spec(str), b"plain text") == "plain text"


def test_binary_bodies_travel_as_bytes() -> None:
    message = decode_queue(queue_spec(func.QueueMessage), b"\xff\xfe")
    assert message.get_body() == b"\xff\xfe"


def test_binding_data_has_the_body_its_json_properties_and_the_system_properties() -> None:
    _, _, data = trigger_data(b'{"orderId": "A-1", "Id": "from-body"}', SYSTEM)
    assert data["QueueTrigger"] == '{"orderId": "A-1", "Id": "from-body"}'
    assert data["orderId"] == "A-1"
    assert data["Id"] == "m-1"
    assert data["DequeueCount"] == 2


def test_queue_names_are_lower_cased_and_validated() -> None:
    assert queue_name("f", {"name": "m", "queueName": "Orders"}) == "orders"
    with pytest.raises(QueueNameError, match="Function 'f' \\(binding 'm'\\): queue name 'a_b' is invalid"):
        queue_name("f", {"name": "m", "queueName": "a_b"})


def test_timer_request() -> None:
    app = func.FunctionApp()

    def tick(timer: func.TimerRequest) -> None:
        return None
    app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")(tick)
    spec = spec_of(app)
    schedule = parse_schedule("0 */5 * * * *", timezone.utc)
    status = {"Last": "2024-05-01T10:00:00+00:00", "Next": "2024-05-01T10:05:00+00:00",
              "LastUpdated": "2024-05-01T10:00:01+00:00"}
    request = timer_value(spec, schedule, status, past_due=True)
    assert isinstance(request, TimerRequest)
    assert request.past_due is True
    assert request.schedule_status == status
    assert request.schedule == {"AdjustForDST": True}
    assert timer_value(spec, schedule, None, past_due=False).schedule_status == {}


def test_blob_patterns_capture_parameters() -> None:
    pattern = BlobPattern("f", "samples/{folder}/{name}.{ext}")
    assert pattern.container == "samples" and pattern.prefix == ""
    assert pattern.match("a/b/report.v2.csv") == {"folder": "a/b", "name": "report.v2", "ext": "csv"}
    assert BlobPattern("f", "in/{name}").match("x/y.txt") == {"name": "x/y.txt"}
    prefixed = BlobPattern("f", "in/img-{name}.png")
    assert prefixed.prefix == "img-"
    assert prefixed.match("img-cat.png") == {"name": "cat"}
    assert prefixed.match("doc-cat.png") is None


@pytest.mark.parametrize("path", ["{container}/{name}", "/", "in/{name}/{name}"])
def test_bad_blob_paths(path: str) -> None:
    with pytest.raises(BlobPathError, match=f"Function 'f' \\(blobTrigger\\): path '{path}'"):
        BlobPattern("f", path)


def test_host_queue_name_is_a_valid_queue_name() -> None:
    name = host_queue_name("MyApp_With.Long-Name-and-more-characters-than-fit-0123456789abcdef")
    assert name.startswith("azure-webjobs-blobtrigger-") and len(name) <= 63
    queue_name("f", {"name": "x", "queueName": name})


def output_spec(binding_type: str, annotation: Any) -> FunctionSpec:
    app = func.FunctionApp()

    def handler(req, out):  # type: ignore[no-untyped-def]
        return None
    handler.__annotations__ = {"req": func.HttpRequest, "out": annotation}
    decorate = {"queue": lambda: app.queue_output(arg_name="out", queue_name="q", connection="Storage"),
                "blob": lambda: app.blob_output(arg_name="out", path="c/b", connection="Storage"),
                "table": lambda: app.table_output(arg_name="out", table_name="T", connection="Storage")}[binding_type]()
    app.route(route="x")(decorate(handler))
    return spec_of(app)


def messages(annotation: Any, value: Any) -> list[bytes]:
    spec = output_spec("queue", annotation)
    return queue_messages(encode_output(spec, spec.binding("out") or {}, value))


def test_queue_output_values() -> None:
    assert messages(func.Out[str], "one") == [b"one"]
    assert messages(func.Out[bytes], b"\x00\x01") == [b"\x00\x01"]
    assert messages(func.Out[list[str]], ["a", "b"]) == [b"a", b"b"]
    assert messages(func.Out[str], {"k": 1}) == [b'{"k": 1}']
    wrapped = messages(func.Out[func.QueueMessage], func.QueueMessage(body="hi"))
    assert [json.loads(m) for m in wrapped] == [{"id": None, "body": "hi"}]


def test_blob_output_rejects_what_the_worker_rejects() -> None:
    spec = output_spec("blob", func.Out[func.InputStream])
    with pytest.raises(TypeError, match='unsupported type "blob" for Python type "dict"'):
        encode_output(spec, spec.binding("out") or {}, {"a": 1})


def test_table_output_payloads() -> None:
    spec = output_spec("table", func.Out[str])
    datum = encode_output(spec, spec.binding("out") or {}, json.dumps([{"PartitionKey": "p", "RowKey": "1"}]))
    assert table_entities(datum) == [{"PartitionKey": "p", "RowKey": "1"}]
    row = table_row({"rowkey": 5, "Name": "ada", "Tags": ["x"], "Gone": None}, {"PartitionKey": "from-binding"})
    assert row == {"RowKey": "5", "Name": "ada", "Tags": '["x"]', "PartitionKey": "from-binding"}
    with pytest.raises(OutputBindingError, match="no RowKey"):
        table_row({"PartitionKey": "p"}, {})
