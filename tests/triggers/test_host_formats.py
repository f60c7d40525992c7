"""What the storage extensions and the host write, byte for byte: blob receipts, base64 queue text,
blob path templates, the timer's occurrence log and the JSON the host hands the worker."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import azure.functions as func
import pytest
from test_convert import spec_of

from funcemu.jsontext import compact as compact_json
from funcemu.triggers.blob import BlobPattern, completed_metadata, receipt_completed
from funcemu.triggers.convert import json_datum
from funcemu.triggers.expressions import parameters, render, tokens
from funcemu.triggers.inputs import table_datum
from funcemu.triggers.polling import decode_body
from funcemu.triggers.schedule import parse_schedule
from funcemu.triggers.timer import occurrence_text, timer_value


@pytest.mark.parametrize("metadata, completed", [
    ({}, True),                                        # BlobReceipt.Complete: no Incomplete key
    ({"Incomplete": "Incomplete"}, False),             # BlobReceipt.Incomplete.ToMetadata
    ({"incomplete": ""}, False),                       # the key's presence is what counts
    ({"IsCompleted": "true"}, True),                   # funcemu's older receipts
    ({"IsCompleted": "false"}, False),
])
def test_receipt_metadata_follows_blob_receipt(metadata: dict[str, str], completed: bool) -> None:
    assert receipt_completed(metadata) is completed


def test_marking_complete_drops_only_the_incomplete_marks() -> None:
    assert completed_metadata({"Incomplete": "Incomplete", "IsCompleted": "false", "other": "x"}) == {"other": "x"}


@pytest.mark.parametrize("text", [base64.encodebytes(b"hello").decode(), "aGVs bG8=", "aGVs\r\nbG8=\n",
                                  "\taGVsbG8="])
def test_base64_ignores_whitespace_as_convert_from_base64_string(text: str) -> None:
    assert decode_body(text, "base64") == b"hello"


@pytest.mark.parametrize("text", ["hello!", "aGVsbG8", "aGVs=bG8=", "aGVsbG8===", "aGVsbG8=\u00e9"])
def test_base64_still_rejects_what_dotnet_rejects(text: str) -> None:
    with pytest.raises((binascii.Error, UnicodeEncodeError)):
        decode_body(text, "base64")


def test_template_tokens_as_binding_template_parser() -> None:
    assert [t for t, _ in tokens("{p1}-p2/{{2014}}/{d3}/folder/{name}.{ext}")] == \
        ["p1", "-p2/", "{", "2014", "}", "/", "d3", "/folder/", "name", ".", "ext"]
    assert parameters("{{{parameter}}}") == ["parameter"]
    assert render("out/{{2014}}/{name}", {"name": "a"}) == "out/{2014}/a"


def test_doubled_braces_in_a_blob_path_are_literal() -> None:
    pattern = BlobPattern("f", "in/{p1}-p2/{{2014}}/{name}")
    assert pattern.names == ["p1", "name"]
    assert pattern.match("x-p2/{2014}/doc.txt") == {"p1": "x", "name": "doc.txt"}
    assert pattern.match("x-p2/2014/doc.txt") is None
    assert BlobPattern("f", "in/{{literal}}").match("{literal}") == {}


def test_parameters_match_empty_text() -> None:
    pattern = BlobPattern("f", "btc/{name}.{blobextension}")
    assert pattern.match("noext.") == {"name": "noext", "blobextension": ""}
    assert pattern.match(".hidden") == {"name": "", "blobextension": "hidden"}


@pytest.mark.parametrize("path", ["nosl", "nosl/"])
def test_a_container_only_path_matches_every_blob(path: str) -> None:
    pattern = BlobPattern("f", path)
    assert pattern.container == "nosl" and pattern.prefix == ""
    assert pattern.match("a.txt") == {} and pattern.match("dir/b") == {}


def test_occurrences_in_utc_use_timer_info_format() -> None:
    moment = datetime(2026, 11, 30, 21, 25, tzinfo=timezone.utc)
    assert occurrence_text(moment, timezone.utc) == "11/30/2026 21:25:00Z"
    assert occurrence_text(moment, ZoneInfo("UTC")) == "11/30/2026 21:25:00Z"


def test_occurrences_in_a_local_zone_show_local_then_utc() -> None:
    moment = datetime(2026, 11, 30, 21, 25, tzinfo=timezone.utc)
    assert occurrence_text(moment, ZoneInfo("Europe/Berlin")) == "11/30/2026 22:25:00+01:00 (11/30/2026 21:25:00Z)"
    assert occurrence_text(moment, ZoneInfo("America/New_York")) == \
        "11/30/2026 16:25:00-05:00 (11/30/2026 21:25:00Z)"
    # London is UTC in winter but not the same rules: it prints both
    assert occurrence_text(moment, ZoneInfo("Europe/London")).endswith("+00:00 (11/30/2026 21:25:00Z)")


def test_timer_info_json_is_compact_as_newtonsoft() -> None:
    app = func.FunctionApp()

    def tick(timer: str) -> None:
        return None
    app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")(tick)
    value = timer_value(spec_of(app), parse_schedule("0 */5 * * * *", timezone.utc), None, past_due=False)
    assert value == '{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}'
    assert compact_json({"Last": "x", "Next": "y"}) == '{"Last":"x","Next":"y"}'


def test_metadata_and_table_json() -> None:
    assert json_datum({"a": [1, "é"]}).value == '{"a":[1,"é"]}'
    rows = table_datum([{"PartitionKey": "p", "RowKey": "1"}])
    assert rows is not None and rows.value == '[{"PartitionKey":"p","RowKey":"1"}]'
    entity = table_datum({"PartitionKey": "p", "RowKey": "1"})   # a JObject: JObject.ToString(), indented
    assert entity is not None and entity.value == '{\n  "PartitionKey": "p",\n  "RowKey": "1"\n}'
    assert json.loads(entity.value) == {"PartitionKey": "p", "RowKey": "1"}
    assert table_datum(None) is None
