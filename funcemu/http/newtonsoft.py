"""Newtonsoft.Json's lenient reader and JToken writer, as the host uses them on string results (§3.8).

`JsonConvert.DeserializeObject(string)` (default settings) reads with `JsonTextReader`, which accepts
more than JSON: single-quoted strings, unquoted property names, `//` and `/* */` comments, empty
values and trailing commas, `NaN`/`Infinity`/`-Infinity`, `undefined`, hex/octal integers and
`new Name(...)` constructors. It also turns ISO-8601 looking strings into `DateTime` values
(DateParseHandling.DateTime), which are written back in Newtonsoft's own ISO format. Everything
below is ported from Newtonsoft.Json's `JsonTextReader.cs`, `DateTimeParser.cs`, `DateTimeUtils.cs`,
`JsonWriter.cs` and `JsonTextWriter.cs` (master); the function names say which method each follows.

Values come back as json.loads would return them, plus `UNDEFINED`, `Comment` (only kept inside a
top-level array, like JTokenWriter does), `Constructor` and `NetDateTime`.
"""

from __future__ import annotations

import calendar
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

__all__ = [
    "UNDEFINED",
    "Comment",
    "Constructor",
    "HostFailure",
    "NetDateTime",
    "NotJson",
    "dotnet_double",
    "dumps",
    "loads",
]

MAX_DEPTH = 64  # JsonReader's default MaxDepth (JsonSerializerSettings.DefaultMaxDepth)
_BIGINT_MAX_CHARS = 380  # JsonTextReader.MaximumJavascriptIntegerCharacterLength
_NUMBER_CHARS = frozenset("-+aAbBcCdDeEfFxX.0123456789")  # ReadNumberCharIntoBuffer
_TICKS_PER_SECOND = 10_000_000
_MAX_TICKS = 3155378975999999999  # DateTime.MaxValue.Ticks
_INTEGER = re.compile(r"-?[0-9]+")  # ConvertUtils.Int64TryParse accepts only these
_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class NotJson(ValueError):
    """JsonReaderException / JsonSerializationException: the host keeps the plain string."""


class HostFailure(ValueError):
    """An exception the host does not catch (the invocation fails with 500)."""


class _Undefined:
    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Any = _Undefined()


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class Constructor:
    name: str
    args: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class NetDateTime:
    """System.DateTime: 100ns ticks since 0001-01-01, a kind, and (Local only) the UTC offset in minutes."""

    ticks: int
    kind: str  # "utc", "local" or "unspecified"
    offset_minutes: int = 0

    def iso(self) -> str:
        """DateTimeUtils.WriteDateTimeString with DateFormatHandling.IsoDateFormat."""
        m = _wall_clock(self.ticks)
        text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        fraction = self.ticks % _TICKS_PER_SECOND
        if fraction:
            text += "." + f"{fraction:07d}".rstrip("0")
        if self.kind == "utc":
            return text + "Z"
        if self.kind == "local":
            sign = "+" if self.offset_minutes >= 0 else "-"
            hours, minutes = divmod(abs(self.offset_minutes), 60)
            return f"{text}{sign}{hours:02d}:{minutes:02d}"
        return text

    def dotnet_text(self) -> str:
        """DateTime.ToString() under the invariant culture: `MM/dd/yyyy HH:mm:ss`."""
        moment = _wall_clock(self.ticks)
        return f"{moment.month:02d}/{moment.day:02d}/{moment.year:04d} {moment:%H:%M:%S}"


def _wall_clock(ticks: int) -> datetime:
    return datetime(1, 1, 1) + timedelta(microseconds=ticks // 10)


# ---------------------------------------------------------------- character classes (.NET char.*)


def _is_whitespace(char: str) -> bool:
    """char.IsWhiteSpace: U+0009-000D, U+0085 and the Zs/Zl/Zp categories."""
    return char in "\t\n\v\f\r\x85" or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def _is_letter_or_digit(char: str) -> bool:
    return unicodedata.category(char) in ("Lu", "Ll", "Lt", "Lm", "Lo", "Nd")


def _is_number(char: str) -> bool:
    return unicodedata.category(char) in ("Nd", "Nl", "No")


# ---------------------------------------------------------------- reader


def loads(text: str, *, expando: bool = False) -> Any:
    """JsonConvert.DeserializeObject(text), or (`expando`) DeserializeObject<ExpandoObject>(text).

    Raises NotJson where Newtonsoft throws a JsonException, HostFailure where it throws anything else.
    """
    value = loads_strict(text)
    return _Reader(text, expando).document() if value is NOT_STRICT else value


NOT_STRICT = object()
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_BIGGEST = 10**_BIGINT_MAX_CHARS


class _Unlike(Exception):
    """Strict JSON that Newtonsoft reads differently from json.loads: leave it to the full reader."""


def loads_strict(text: str) -> Any:
    """`loads(text)` at json.loads speed when `text` is strict JSON that Newtonsoft reads to the same
    values once its date-like strings are DateTimes; else NOT_STRICT. Left to the full reader: a
    repeated key (the last wins and moves to the end), NaN/Infinity, an escaped surrogate (an unpaired
    one becomes U+FFFD), nesting deeper than MAX_DEPTH, integers past 380 digits. The same holds for
    the ExpandoObject read, which differs from the first only on text that is not strict JSON."""
    if _SURROGATE_ESCAPE.search(text):
        return NOT_STRICT
    try:
        return _with_dates(json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant), 0)
    except (ValueError, RecursionError, _Unlike):
        return NOT_STRICT


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _Unlike
    return found


def _no_constant(name: str) -> Any:
    raise _Unlike


def _with_dates(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _parse_date(value) if 19 <= len(value) <= 40 else value
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise _Unlike
        return {key: _with_dates(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise _Unlike
        return [_with_dates(item, depth + 1) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _BIGGEST:
        raise _Unlike
    return value


class _Reader:
    def __init__(self, text: str, expando: bool) -> None:
        self.text = text
        self.pos = 0
        self.expando = expando
        self.keep_comments = False  # JTokenWriter writes comments only below a top-level array
        self.depth = 0

    # -- helpers

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def eat_whitespace(self) -> None:
        """EatWhitespace: whitespace and NUL characters (the reader skips a NUL that is not the end)."""
        while self.pos < len(self.text) and (self.text[self.pos] == "\0" or _is_whitespace(self.text[self.pos])):
            self.pos += 1

    def comment(self) -> Comment:
        """ParseComment: `//` up to a line break or the end, `/* */` must be closed."""
        self.pos += 1
        kind = self.peek()
        if kind not in ("*", "/"):
            raise NotJson("Error parsing comment. Expected: *, got " + repr(kind))
        self.pos += 1
        start = self.pos
        if kind == "/":
            while self.pos < len(self.text) and self.text[self.pos] not in "\r\n":
                self.pos += 1
            return Comment(self.text[start : self.pos])
        end = self.text.find("*/", start)
        if end < 0:
            raise NotJson("Unexpected end while parsing comment.")
        self.pos = end + 2
        return Comment(self.text[start:end])

    def is_separator(self, in_constructor: bool) -> bool:
        """MatchValueWithTrailingSeparator's check of the character after a literal."""
        char = self.peek()
        if char in ("", "\0", "}", "]", ","):
            return True
        if char == "/":
            return self.peek(1) in ("*", "/") and self.peek(1) != ""
        if char == ")":
            return in_constructor
        return _is_whitespace(char)

    def literal(self, word: str, in_constructor: bool) -> None:
        if not self.text.startswith(word, self.pos):
            raise NotJson(f"Error parsing {word} value.")
        self.pos += len(word)
        if not self.is_separator(in_constructor):
            raise NotJson(f"Error parsing {word} value.")

    def push(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise NotJson(f"The reader's MaxDepth of {MAX_DEPTH} has been exceeded.")

    # -- document

    def document(self) -> Any:
        """Deserialize: leading comments skipped (MoveToContent), then CheckAdditionalContent."""
        while True:
            self.eat_whitespace()
            if self.pos >= len(self.text):
                return None  # no content: null
            if self.peek() != "/":
                break
            self.comment()
        char = self.peek()
        if char == "{":
            value: Any = self.obj()
        elif char == "[":
            self.keep_comments = not self.expando
            value = self.array("]")
        else:
            value = self.value(in_constructor=False)
            if value is UNDEFINED:
                if self.peek() == ",":  # the ',' was not consumed
                    raise NotJson("Additional text encountered after finished reading JSON content: ,.")
                value = None
        while True:  # State.Finished: only whitespace and comments may follow
            self.eat_whitespace()
            if self.pos >= len(self.text):
                return value
            if self.peek() != "/":
                raise NotJson(f"Additional text encountered after finished reading JSON content: {self.peek()}.")
            self.comment()

    # -- values

    def value(self, in_constructor: bool) -> Any:
        """ParseValue for one value (comments before it are skipped by the callers)."""
        while True:
            self.eat_whitespace()
            char = self.peek()
            if char == "":
                raise NotJson("Unexpected end.")
            if char in ('"', "'"):
                self.pos += 1
                return _parse_date(self.string(char))
            if char == "t":
                self.literal("true", in_constructor)
                return True
            if char == "f":
                self.literal("false", in_constructor)
                return False
            if char == "n":
                if self.peek(1) == "u":
                    self.literal("null", in_constructor)
                    return None
                if self.peek(1) == "e":
                    return self.constructor(in_constructor)
                raise NotJson("Unexpected character encountered while parsing value: n.")
            if char == "N":
                self.literal("NaN", in_constructor)
                return math.nan
            if char == "I":
                self.literal("Infinity", in_constructor)
                return math.inf
            if char == "-" and self.peek(1) == "I":
                self.literal("-Infinity", in_constructor)
                return -math.inf
            if char == "u":
                self.literal("undefined", in_constructor)
                return UNDEFINED if not self.expando else None
            if char == "{":
                return self.obj()
            if char == "[":
                return self.array("]")
            if char == ",":
                return UNDEFINED if not self.expando else None  # an empty value; ',' is left for the caller
            if char in "])":
                raise NotJson(f"Unexpected character encountered while parsing value: {char}.")
            if char == "-" or char == "." or _is_number(char):
                return self.number()
            raise NotJson(f"Unexpected character encountered while parsing value: {char}.")

    def string(self, quote: str) -> str:
        """ReadStringIntoBuffer: the escapes JSON allows plus `\\'`; raw control characters are kept."""
        out: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise NotJson(f"Unterminated string. Expected delimiter: {quote}.")
            char = text[self.pos]
            self.pos += 1
            if char == quote:
                return "".join(out)
            if char != "\\":
                out.append(char)
                continue
            if self.pos >= len(text):
                raise NotJson(f"Unterminated string. Expected delimiter: {quote}.")
            escape = text[self.pos]
            self.pos += 1
            simple = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "\\": "\\", '"': '"', "'": "'", "/": "/"}
            if escape in simple:
                out.append(simple[escape])
            elif escape == "u":
                out.append(self.unicode_escape())
            else:
                raise NotJson(f"Bad JSON escape sequence: \\{escape}.")

    def hex4(self) -> str:
        digits = self.text[self.pos : self.pos + 4]
        if len(digits) < 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise NotJson(f"Invalid Unicode escape sequence: \\u{digits}.")
        self.pos += 4
        return chr(int(digits, 16))

    def unicode_escape(self) -> str:
        """The `\\u` branch of ReadStringIntoBuffer: unpaired surrogates become U+FFFD."""
        char = self.hex4()
        if "\udc00" <= char <= "\udfff":
            return "\ufffd"
        if not "\ud800" <= char <= "\udbff":
            return char
        written = ""
        while True:
            if self.text.startswith("\\u", self.pos) and len(self.text) - self.pos >= 3:
                self.pos += 2
                following = self.hex4()
                if "\udc00" <= following <= "\udfff":
                    return written + (char + following).encode("utf-16", "surrogatepass").decode("utf-16")
                written += "\ufffd"
                if "\ud800" <= following <= "\udbff":
                    char = following
                    continue
                return written + following
            return written + "\ufffd"

    def number(self) -> Any:
        """ParseNumber / ParseReadNumber with ReadType.Read (FloatParseHandling.Double)."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _NUMBER_CHARS:
            self.pos += 1
        after = self.peek()
        if after not in ("", "\0", ",", "}", "]", ")", "/") and not _is_whitespace(after):
            raise NotJson(f"Unexpected character encountered while parsing number: {after}.")
        number = self.text[start : self.pos]
        if number == "":
            raise NotJson(f"Input string '{number}' is not a valid number.")
        if len(number) == 1 and number.isdigit():
            return int(number)
        if number[0] == "0" and len(number) > 1 and number[1] not in ".eE":
            return _non_base10(number)
        if _INTEGER.fullmatch(number):
            if -(2**63) <= int(number) < 2**63:
                return int(number)  # Int64
            if len(number) > _BIGINT_MAX_CHARS:
                raise NotJson(f"JSON integer {number} is too large to parse.")
            return int(number)  # BigInteger
        if not _FLOAT.fullmatch(number):  # double.TryParse(NumberStyles.Float, invariant)
            raise NotJson(f"Input string '{number}' is not a valid number.")
        return float(number)

    def constructor(self, in_constructor: bool) -> Constructor:
        """ParseConstructor: `new Name(` ... `)` with array-like arguments."""
        self.literal("new", in_constructor)
        self.eat_whitespace()
        start = self.pos
        while self.pos < len(self.text) and _is_letter_or_digit(self.text[self.pos]):
            self.pos += 1
        name = self.text[start : self.pos]
        if self.pos >= len(self.text):
            raise NotJson("Unexpected end while parsing constructor.")
        if self.peek() != "(" and self.peek() != "\0" and not _is_whitespace(self.peek()):
            raise NotJson(f"Unexpected character while parsing constructor: {self.peek()}.")
        if not name:
            raise NotJson("Empty constructor name.")
        self.eat_whitespace()
        if self.peek() != "(":
            raise NotJson(f"Unexpected character while parsing constructor: {self.peek()}.")
        if self.depth == 0:  # DeserializeObject returns the name, then finds the arguments as additional text
            raise NotJson("Additional text found in JSON string after finishing deserializing object.")
        if self.expando:
            raise HostFailure("Unexpected token when converting ExpandoObject: StartConstructor")
        if name == "Date":
            raise HostFailure("new Date(...) constructors are not emulated")
        return Constructor(name, self.array(")"))

    # -- containers

    def array(self, closing: str) -> list[Any]:
        """An array (or constructor arguments): values, empty values and a trailing comma; `closing` ends it."""
        self.pos += 1
        self.push()
        items: list[Any] = []
        in_constructor = closing == ")"
        while True:
            self.eat_whitespace()
            if self.peek() == closing:  # ParseValue in State.Array/ArrayStart (or Constructor) accepts the end
                self.pos += 1
                self.depth -= 1
                return items
            if self.peek() == "/":  # a Comment token; JTokenWriter keeps it below a top-level array
                found = self.comment()
                if self.keep_comments:
                    items.append(found)
                continue
            items.append(self.value(in_constructor))
            if not self.post_value(closing, items):
                self.depth -= 1
                return items

    def post_value(self, closing: str, items: list[Any] | None) -> bool:
        """ParsePostValue: True after a ',' (more may follow), False once `closing` was read."""
        while True:
            self.eat_whitespace()
            char = self.peek()
            if char == ",":
                self.pos += 1
                return True
            if char == closing:
                self.pos += 1
                return False
            if char == "/":
                found = self.comment()
                if self.keep_comments:
                    if items is None:
                        raise HostFailure("Can not add Newtonsoft.Json.Linq.JValue to Newtonsoft.Json.Linq.JObject.")
                    items.append(found)
                continue
            if char == "":
                raise NotJson("Unexpected end.")
            if char in "}])":
                raise NotJson(f"JsonToken for {char} is not valid here.")
            raise NotJson(f"After parsing a value an unexpected character was encountered: {char}.")

    def obj(self) -> dict[str, Any]:
        """ParseObject / ParseProperty; JTokenWriter: a repeated name is removed and added again at the end."""
        self.pos += 1
        self.push()
        result: dict[str, Any] = {}
        while True:
            self.eat_whitespace()
            char = self.peek()
            if char == "}":
                self.pos += 1
                self.depth -= 1
                return result
            if char == "/":
                self.comment()
                if self.keep_comments:
                    raise HostFailure("Can not add Newtonsoft.Json.Linq.JValue to Newtonsoft.Json.Linq.JObject.")
                continue
            if char == "":
                raise NotJson("Unexpected end.")
            name = self.property_name()
            while True:  # ReadAndMoveToContent / WriteToken skip comments before the value
                self.eat_whitespace()
                if self.peek() != "/":
                    break
                self.comment()
                if self.keep_comments:
                    raise HostFailure("Can not add Newtonsoft.Json.Linq.JValue to Newtonsoft.Json.Linq.JObject.")
            if self.peek() in ("}", "]", ")"):
                raise NotJson(f"Unexpected character encountered while parsing value: {self.peek()}.")
            item = self.value(False)
            if not self.expando:
                result.pop(name, None)
            result[name] = item
            if not self.post_value("}", None):
                self.depth -= 1
                return result

    def property_name(self) -> str:
        char = self.peek()
        if char in ('"', "'"):
            self.pos += 1
            name = self.string(char)
        elif _is_letter_or_digit(char) or char in "_$":
            start = self.pos
            while True:  # ParseUnquotedProperty
                char = self.peek()
                if char == "":
                    raise NotJson("Unexpected end while parsing unquoted property name.")
                if _is_letter_or_digit(char) or char in "_$":
                    self.pos += 1
                    continue
                if char == ":" or char == "\0" or _is_whitespace(char):
                    break
                raise NotJson(f"Invalid JavaScript property identifier character: {char}.")
            name = self.text[start : self.pos]
        else:
            raise NotJson(f"Invalid property identifier character: {char}.")
        self.eat_whitespace()
        if self.peek() != ":":
            raise NotJson(f"Invalid character after parsing property name. Expected ':' but got: {self.peek()}.")
        self.pos += 1
        return name


def _non_base10(number: str) -> int:
    """Convert.ToInt64(number, 16) for `0x...`, else Convert.ToInt64(number, 8); 64-bit two's complement."""
    if number[:2].lower() == "0x":
        digits, base = number[2:], 16
    else:
        digits, base = number, 8
    allowed = "0123456789abcdefABCDEF" if base == 16 else "01234567"
    if not digits or any(c not in allowed for c in digits):
        raise NotJson(f"Input string '{number}' is not a valid number.")
    value = int(digits, base)
    if value >= 2**64:  # OverflowException
        raise NotJson(f"Input string '{number}' is not a valid number.")
    return value - 2**64 if value >= 2**63 else value


# ---------------------------------------------------------------- dates (DateParseHandling.DateTime)


def _parse_date(text: str) -> Any:
    """DateTimeUtils.TryParseDateTime for a string value: ISO dates only (see the module notes)."""
    if 19 <= len(text) <= 40 and text[0].isdigit() and text[10] == "T":
        parsed = _DateTimeParser(text).parse()
        if parsed is not None:
            return parsed
    return text


class _DateTimeParser:
    """DateTimeParser.Parse + DateTimeUtils.TryParseDateTimeIso with DateTimeZoneHandling.RoundtripKind."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.end = len(text)

    def digits(self, start: int, count: int) -> int | None:
        part = self.text[start : start + count]
        if start + count > self.end or len(part) != count or not all("0" <= c <= "9" for c in part):
            return None
        return int(part)

    def char(self, start: int, expected: str) -> bool:
        return start < self.end and self.text[start] == expected

    def parse(self) -> NetDateTime | None:
        year, month, day = self.digits(0, 4), self.digits(5, 2), self.digits(8, 2)
        if year is None or year < 1 or not self.char(4, "-") or month is None or not 1 <= month <= 12:
            return None
        if not self.char(7, "-") or day is None or day < 1:
            return None
        if day > calendar.monthrange(year, month)[1]:
            return None
        if not self.char(10, "T"):
            return None
        hour, minute, second = self.digits(11, 2), self.digits(14, 2), self.digits(17, 2)
        if hour is None or hour > 24 or not self.char(13, ":") or minute is None or minute >= 60:
            return None
        if not self.char(16, ":") or second is None or second >= 60 or (hour == 24 and (minute or second)):
            return None
        start, fraction = 19, 0
        if self.char(start, "."):
            count = 0
            start += 1
            while start < self.end and count < 7 and "0" <= self.text[start] <= "9":
                fraction = fraction * 10 + int(self.text[start])
                count += 1
                start += 1
            if count == 0:
                return None
            fraction *= 10 ** (7 - count)
            if hour == 24 and fraction:
                return None
        zone, zone_hour, zone_minute = "unspecified", 0, 0
        if start < self.end:  # ParseZone, including its quirks
            ch = self.text[start]
            if ch in "Zz":
                zone = "utc"
                start += 1
            else:
                parsed_hour = self.digits(start + 1, 2) if start + 2 < self.end else None
                if parsed_hour is not None:
                    zone_hour = parsed_hour
                    if ch in "+-":
                        zone = "west" if ch == "-" else "east"
                        start += 3
                if start < self.end:
                    if self.char(start, ":"):
                        start += 1
                    parsed_minute = self.digits(start, 2) if start + 1 < self.end else None
                    if parsed_minute is not None:
                        zone_minute = parsed_minute
                        start += 2
        if start != self.end:
            return None
        base = datetime(year, month, day) - datetime(1, 1, 1)
        ticks = (base.days * 86400 + (hour % 24) * 3600 + minute * 60 + second) * _TICKS_PER_SECOND + fraction
        if hour == 24:
            ticks += 86400 * _TICKS_PER_SECOND
            if ticks > _MAX_TICKS:
                raise HostFailure("The added or subtracted value results in an un-representable DateTime.")
        if zone == "utc":
            return NetDateTime(ticks, "utc")
        if zone == "unspecified":
            return NetDateTime(ticks, "unspecified")
        offset = (zone_hour * 60 + zone_minute) * 60 * _TICKS_PER_SECOND
        utc_ticks = ticks + offset if zone == "west" else ticks - offset
        return _to_local(utc_ticks)


def _to_local(utc_ticks: int) -> NetDateTime:
    """DateTime.ToLocalTime() in this process's time zone (the host converts to its own local time)."""
    try:
        moment = (datetime(1, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=utc_ticks // 10)).astimezone()
        offset = moment.utcoffset() or timedelta(0)
    except (OverflowError, OSError, ValueError):
        offset = timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    ticks = min(max(utc_ticks + minutes * 60 * _TICKS_PER_SECOND, 0), _MAX_TICKS)
    return NetDateTime(ticks, "local", minutes)


# ---------------------------------------------------------------- writer (JsonTextWriter)


def dumps(value: Any, indented: bool) -> str:
    """JToken.ToString() (indented) or JsonConvert.SerializeObject(..., Formatting.None).

    The host's Environment.NewLine is "\\n" on Linux, where Azure runs Python apps; we use that.
    """
    return _write(value, 0 if indented else None)


def _write(value: Any, level: int | None) -> str:
    if isinstance(value, dict):
        items = [
            f"{json_string(str(k))}:{' ' if level is not None else ''}{_write(v, _deeper(level))}"
            for k, v in value.items()
        ]
        return _container("{", "}", [(False, item) for item in items], level, empty_close_indent=False)
    if isinstance(value, list):
        return _container("[", "]", _children(value, level), level, empty_close_indent=False)
    if isinstance(value, Constructor):
        return _container(f"new {value.name}(", ")", _children(value.args, level), level, empty_close_indent=True)
    if isinstance(value, str):
        return json_string(value)
    if isinstance(value, NetDateTime):
        return f'"{value.iso()}"'
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, Comment):
        if "*/" in value.text:
            return "".join(f"//{part}\n" for part in value.text.split("\n"))
        return f"/*{value.text}*/"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = dotnet_double(value)
        if not math.isfinite(value):
            return f'"{text}"'  # FloatFormatHandling.String
        return text if any(c in text for c in ".E") else f"{text}.0"  # EnsureDecimalPlace
    return "null" if value is None else json.dumps(value)


def _children(values: list[Any], level: int | None) -> list[tuple[bool, str]]:
    return [(isinstance(v, Comment), _write(v, _deeper(level))) for v in values]


def _deeper(level: int | None) -> int | None:
    return None if level is None else level + 1


def _container(
    opening: str, closing: str, items: list[tuple[bool, str]], level: int | None, empty_close_indent: bool
) -> str:
    """JsonWriter.AutoComplete/AutoCompleteClose: a ',' before each value after a value (not a comment),
    each token on its own indented line, and the close indented unless nothing but comments was written
    (constructors always indent their close)."""
    parts = [opening]
    pad = "" if level is None else "\n" + "  " * (level + 1)
    wrote_value = False
    for is_comment, text in items:
        if not is_comment and wrote_value:
            parts.append(",")
        parts.append(pad + text)
        wrote_value = wrote_value or not is_comment
    if level is not None and (wrote_value or empty_close_indent):
        parts.append("\n" + "  " * level)
    parts.append(closing)
    return "".join(parts)


def json_string(text: str) -> str:
    """Newtonsoft's default escaping: control characters, quote, backslash, and U+0085/U+2028/U+2029."""
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted.replace("\u0085", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def dotnet_double(value: float) -> str:
    """double.ToString() on .NET Core 3+: shortest round-trip digits, E notation past 15 digits or below 1e-5."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    scale = len(digits) + int(exponent)  # the decimal point sits after `scale` digits
    digits = digits.rstrip("0")
    minus = "-" if sign else ""
    if scale > max(len(digits), 15) or scale < -3:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return f"{minus}{mantissa}E{'+' if scale > 0 else '-'}{abs(scale - 1):02d}"
    if scale <= 0:
        return f"{minus}0.{'0' * -scale}{digits}"
    if scale >= len(digits):
        return f"{minus}{digits}{'0' * (scale - len(digits))}"
    return f"{minus}{digits[:scale]}.{digits[scale:]}"
