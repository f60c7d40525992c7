"""Binding expressions: %app settings% and {binding data}, with the host's built-ins."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

import pytest

from funcemu.triggers.expressions import (
    BindingExpressionError,
    format_datetime,
    lookup,
    parameters,
    render,
    resolve_settings,
)

NOW = datetime(2018, 2, 16, 17, 59, 55, 123456, tzinfo=timezone.utc)


def test_trigger_data_fills_the_template() -> None:
    data = {"QueueTrigger": "order-7", "Id": "abc"}
    assert render("out/{queueTrigger}-{id}.txt", data) == "out/order-7-abc.txt"


def test_json_properties_and_dotted_paths() -> None:
    data = {"customer": {"Name": "ada"}, "count": 3, "vip": True}
    assert render("{Customer.name}/{count}/{vip}", data) == "ada/3/True"


def test_route_parameters_work_the_same_way() -> None:
    assert render("files/{id}.json", {"id": "42", "Query": {}, "Headers": {}}) == "files/42.json"


def test_rand_guid_is_new_each_time_and_takes_a_format() -> None:
    first, second = render("{rand-guid}", {}), render("{rand-guid}", {})
    assert uuid.UUID(first) and first != second
    assert re.fullmatch(r"[0-9a-f]{32}", render("{rand-guid:N}", {}))
    assert re.fullmatch(r"\{[0-9a-f-]{36}\}", render("{sys.randguid:B}", {}))


def test_datetime_defaults_to_the_hosts_path_friendly_format() -> None:
    assert render("logs/{DateTime}.txt", {}, now=NOW) == "logs/2018-02-16T17-59-55Z.txt"
    assert render("{DateTime:yyyy/MM/dd}/{datetime:HH.mm.ss.fff}", {}, now=NOW) == "2018/02/16/17.59.55.123"
    assert render("{sys.utcnow}", {}, now=NOW) == "2018-02-16T17-59-55Z"


def test_datetime_from_the_trigger_wins_over_the_clock() -> None:
    assert render("{DateTime}", {"DateTime": "given"}, now=NOW) == "given"


def test_method_name() -> None:
    assert render("{sys.MethodName}", {}, function="copy_blob") == "copy_blob"


def test_a_missing_value_is_the_hosts_error() -> None:
    with pytest.raises(BindingExpressionError, match=r"^No value for named parameter 'orderId'\.$"):
        render("orders/{orderId}", {"queueTrigger": "x"})


def test_objects_cannot_go_into_a_path() -> None:
    with pytest.raises(BindingExpressionError, match="cannot be used in a path"):
        render("{customer}", {"customer": {"name": "ada"}})


def test_lookup_is_case_insensitive() -> None:
    assert lookup({"BlobTrigger": "c/x"}, "blobtrigger") == "c/x"
    with pytest.raises(KeyError):
        lookup({"a": 1}, "a.b")


def test_parameters_lists_the_expressions() -> None:
    assert parameters("c/{name}.{ext}") == ["name", "ext"]


def test_app_settings_are_resolved_in_binding_properties() -> None:
    binding = {"name": "msg", "type": "queueTrigger", "queueName": "%InQueue%-{x}", "connection": "Storage"}
    resolved = resolve_settings("ingest", binding, {"InQueue": "orders"})
    assert resolved["queueName"] == "orders-{x}"
    assert binding["queueName"] == "%InQueue%-{x}"


def test_a_missing_app_setting_names_function_binding_and_setting() -> None:
    binding = {"name": "msg", "type": "queueTrigger", "queueName": "%InQueue%"}
    with pytest.raises(BindingExpressionError) as error:
        resolve_settings("ingest", binding, {})
    assert str(error.value).startswith("Function 'ingest' (binding 'msg'): queueName '%InQueue%' refers to the "
                                       "app setting 'InQueue', which does not exist.")


def test_format_datetime_keeps_literals() -> None:
    assert format_datetime(NOW, "yyyy-MM-ddTHH:mm:ssZ") == "2018-02-16T17:59:55Z"
    assert format_datetime(NOW, "hh tt") == "05 PM"
