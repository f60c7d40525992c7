"""Newtonsoft's lenient reader on string results (functions-host.md §3.8; JsonTextReader.cs ports)."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator

import pytest

from funcemu.http.convert import HttpResult, render_http_response
from funcemu.http.newtonsoft import UNDEFINED, Comment, HostFailure, NetDateTime, NotJson, dumps, loads

TEXT = ("Content-Type", "text/plain; charset=utf-8")


@pytest.fixture
def utc_plus_2() -> Iterator[None]:
    """A fixed local zone: the host converts offset dates to its own local time."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "EET-2"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, -2, 3.5, 1e3, true, false, null, "x\\u00e9\\n"], "b": {}, "c": []}',
        '[{"k": "v"}, [], "", 0, -0.0, 12345678901234567890]',
        '"plain"',
        "  42  ",
        '{"": 1, "nested": {"deep": [[[]]]}}',
        '"\\ud83d\\ude00"',
    ],
)
def test_valid_json_reads_like_json_loads(text: str) -> None:
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{'a': 'b'}", {"a": "b"}),  # single quotes
        ("{a: 1, $b_2: 2}", {"a": 1, "$b_2": 2}),  # unquoted property names
        ("{'it\\'s': \"q\\'\"}", {"it's": "q'"}),  # \' escape
        ("{a: 1,}", {"a": 1}),  # trailing comma
        ("[1, 2,]", [1, 2]),
        ("[1,,2]", [1, UNDEFINED, 2]),  # an empty value is undefined
        ("[,]", [UNDEFINED]),
        ("{a:,}", {"a": UNDEFINED}),
        ("[undefined]", [UNDEFINED]),
        ("// lead\n{a: /* x */ 1 /* y */} // tail", {"a": 1}),
        ("{a: [1 /* dropped below an object */]}", {"a": [1]}),
        ("[1 /*c*/, 2]", [1, Comment("c"), 2]),  # kept below a top-level array (JTokenWriter)
        ("0x1F", 31),
        ("0XfF", 255),
        ("010", 8),  # octal
        ("0xFFFFFFFFFFFFFFFF", -1),  # Convert.ToInt64(.., 16): two's complement
        ("-0", 0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e400", math.inf),
        ("[NaN, Infinity, -Infinity]", [None, math.inf, -math.inf]),  # NaN checked below
        ("{a:1,\"b\":2,a:3}", {"b": 2, "a": 3}),  # JTokenWriter: a repeated name moves to the end
        ("  \u00a0\u2028 ", None),  # .NET whitespace only: null
        ("/* only */", None),
        ("undefined", None),
        ('"tab\there"', "tab\there"),  # raw control characters are accepted
        ('"\\ud800x"', "\ufffdx"),
        ("'\\ud800\\ud800\\udc00'", "\ufffd\U00010000"),
        ("\0[\0" "1\0]\0", [1]),  # NUL between tokens is skipped
    ],
)
def test_newtonsoft_extras(text: str, expected: object) -> None:
    value = loads(text)
    if isinstance(expected, list) and value and isinstance(value[0], float) and math.isnan(value[0]):
        value = [None, *value[1:]]
    assert value == expected


@pytest.mark.parametrize(
    "text",
    [
        "{'a': True}",  # Python reprs Newtonsoft rejects
        "{'a': None}",
        "None",
        "{'a': (1, 2)}",
        "{1: 'x'}" + "!",
        "12 monkeys",
        "1,",  # the top-level ',' is additional content
        ",",
        "[1] [2]",
        "{a b: 1}",
        "{a-b: 1}",
        "{'a' /*c*/ : 1}",
        "{,}",
        "{a:1,,}",
        "[1 2]",
        "[1}",
        "{a:1]",
        "[1,2",
        "{'a':1",
        "'unterminated",
        "\"bad \\x escape\"",
        '"\\u12"',
        "/* open",
        "/ x",
        "1 / 2",
        "+1",
        "1.2.3",
        "1e",
        "09",  # not octal
        "0x",
        "0x1G",
        "0x10000000000000000",  # Int64 overflow
        "1" * 381,  # too large for a BigInteger
        "tru",
        "trueish",
        "nul",
        "Infinit",
        "-",
        "new Date(1)",  # a top-level constructor is followed by additional content
        "new (1)",
        "[" * 65 + "]" * 65,  # MaxDepth 64
        "{a:" * 65 + "1" + "}" * 65,
    ],
)
def test_not_json(text: str) -> None:
    with pytest.raises(NotJson):
        loads(text)
    assert render_http_response(text) == HttpResult(200, [TEXT], text.encode())


def test_max_depth_boundary() -> None:
    assert loads("[" * 64 + "]" * 64) is not None


def test_big_integers() -> None:
    assert loads("-" + "9" * 30) == -int("9" * 30)
    assert loads("9223372036854775808") == 2**63


def test_nan() -> None:
    assert math.isnan(loads("NaN"))


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("{a:1}", '{\n  "a": 1\n}'),  # same text as the strict path gives for {"a":1}
        ("{'a': 'b', 'c': [1, 2.0]}", '{\n  "a": "b",\n  "c": [\n    1,\n    2.0\n  ]\n}'),
        ("{x: NaN, y: undefined, z: -Infinity}", '{\n  "x": "NaN",\n  "y": undefined,\n  "z": "-Infinity"\n}'),
        ("[1,,2,]", "[\n  1,\n  undefined,\n  2\n]"),
        ("[1 /*c*/, 2]", "[\n  1\n  /*c*/,\n  2\n]"),
        ("[/*c*/ 1]", "[\n  /*c*/\n  1\n]"),
        ("[/*c*/]", "[\n  /*c*/]"),  # AutoCompleteClose: no indent in State.ArrayStart
        ("[1 // a */ b\n]", "[\n  1\n  // a */ b\n\n]"),  # WriteComment: '*/' inside => line comments
        ("[new Foo(1, 2), new Bar()]", "[\n  new Foo(\n    1,\n    2\n  ),\n  new Bar(\n  )\n]"),
        ("{a:1,b:2,a:3}", '{\n  "b": 2,\n  "a": 3\n}'),
        ("0x10", "16"),
        ("'single'", "single"),
        ("undefined", ""),
        ("// nothing", ""),
        ("NaN", "NaN"),
        ("-Infinity", "-Infinity"),
        ('{"d": "2020-01-01T00:00:00.000Z"}', '{\n  "d": "2020-01-01T00:00:00Z"\n}'),  # DateTime round trip
        ('["2020-01-01T00:00:00.1200000", "2020-01-01T24:00:00Z"]', '[\n  "2020-01-01T00:00:00.12",\n  "2020-01-02T00:00:00Z"\n]'),
        ('["2020-01-01T00:00:00.123456789"]', '[\n  "2020-01-01T00:00:00.1234567"\n]'),  # ParseZone eats "89"
        ('["2020-02-30T00:00:00", "2020-01-01 00:00:00", "2020-01-01T00:00"]', '[\n  "2020-02-30T00:00:00",\n  "2020-01-01 00:00:00",\n  "2020-01-01T00:00"\n]'),
        ('"2020-01-31T13:04:05.5Z"', "01/31/2020 13:04:05"),  # DateTime.ToString(), invariant culture
    ],
)
def test_lenient_string_results(text: str, body: str) -> None:
    assert render_http_response(text) == HttpResult(200, [TEXT], body.encode())


def test_local_offsets_become_host_local_time(utc_plus_2: None) -> None:
    assert loads('"2020-01-01T00:00:00-01:30"') == NetDateTime(
        (loads('"2020-01-01T03:30:00Z"').ticks), "local", 120
    )
    text = '{"d": "2020-06-01T12:00:00+00:00", "e": "2020-06-01T12:00:00.5+0200"}'
    expected = '{\n  "d": "2020-06-01T14:00:00+02:00",\n  "e": "2020-06-01T12:00:00.5+02:00"\n}'
    assert render_http_response(text).body == expected.encode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{'body': 'x', 'statusCode': 201}", HttpResult(201, [TEXT], b"x")),  # str(dict) of a response
        ("{body: 'hi', status: '404', /* c */}", HttpResult(404, [TEXT], b"hi")),
        ("{'body': {'n': NaN, u: undefined}}", HttpResult(200, [TEXT], b'{"n":"NaN","u":null}')),
        ("{'body': undefined}", HttpResult(200, [TEXT], b"")),
        ("{'body': 0x1F, 'statusCode': 0xC9}", HttpResult(201, [TEXT], b"31")),
        ('{"body": "2020-01-01T00:00:00Z"}', HttpResult(200, [TEXT], b"01/01/2020 00:00:00")),
        ('{"body": {"d": "2020-01-01T00:00:00.000Z"}}', HttpResult(200, [TEXT], b'{"d":"2020-01-01T00:00:00Z"}')),
        ("{'body': 'x', 'headers': {'X-D': '2020-01-01T00:00:00Z'}}", HttpResult(200, [TEXT, ("X-D", "01/01/2020 00:00:00")], b"x")),
    ],
)
def test_lenient_response_objects(text: str, expected: HttpResult) -> None:
    assert render_http_response(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "[{a: 1 /* c */}]",  # JTokenWriter cannot add a comment to a JObject
        "[{/* c */ a: 1}]",
        "{a: new Foo(1)}",  # ExpandoObjectConverter: unexpected StartConstructor
        "[new Date(0)]",  # Date constructors are not emulated
        '["9999-12-31T24:00:00"]',  # DateTime.AddDays overflows
    ],
)
def test_host_failures(text: str) -> None:
    with pytest.raises(HostFailure):
        render_http_response(text)


def test_dumps_compact_and_indented() -> None:
    value = {"a": [1, {"b": None}], "c": {}, "d": 1.0}
    assert dumps(value, indented=False) == '{"a":[1,{"b":null}],"c":{},"d":1.0}'
    assert dumps(value, indented=True) == (
        '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ],\n  "c": {},\n  "d": 1.0\n}'
    )


STRICT_JSON = [
    '{"a": 1, "b": [1, 2.5, -0, 1e3, true, false, null], "c": {"d": "x"}}',
    '{"when": "2020-01-01T00:00:00.000Z", "local": "2020-01-01T10:00:00", "short": "2020-01-01"}',
    '["2021-02-03T04:05:06.1234567+00:00", "not a dateT00:00:00 at all", 12345678901234567890]',
    '"2020-01-01T00:00:00Z"',
    '{"a": 1, "a": 2, "b": 3}',  # repeated key: left to the full reader
    '[NaN, Infinity]',  # constants: left to the full reader
    '["\\ud800", "\\ud83d\\ude00"]',  # escaped surrogates: left to the full reader
    "[" * 65 + "]" * 65,  # too deep: left to the full reader, which refuses it
    "[" * 64 + "]" * 64,
    '{"text": "line\\nbreak \\u00e9 \\"quoted\\""}',
    "  [1, 2]  ",
]


@pytest.mark.parametrize("text", STRICT_JSON)
def test_the_fast_path_for_strict_json_reads_what_the_full_reader_reads(text: str) -> None:
    from funcemu.http.newtonsoft import _Reader

    try:
        slow: object = dumps(_Reader(text, False).document(), indented=True)
    except NotJson:
        slow = NotJson
    try:
        fast: object = dumps(loads(text), indented=True)
    except NotJson:
        fast = NotJson

    assert fast == slow
