"""Timer schedules (§5.1): NCRONTAB with six fields (seconds first) or five, else a TimeSpan.

Cron matching is croniter's, configured as NCRONTAB behaves: seconds first, and day-of-month AND
day-of-week must both match when both are restricted. Syntax NCRONTAB does not have (L, W, #, ?, H,
day-of-week 7) is refused up front, so a schedule that runs here also runs in Azure.

Occurrences are computed in the host's local time zone (WEBSITE_TIME_ZONE, else TZ, else the system
zone) on local wall-clock times, then placed on the time line as .NET does: a time that occurs twice
when clocks go back fires once, at its second (standard time) occurrence; a time skipped when clocks
go forward fires at the same wall-clock offset after the jump (02:30 becomes 03:30).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from dateutil import tz as dateutil_tz

from funcemu.config import timespan_text
from funcemu.errors import FuncemuError

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+)(?::(\d+)(?:\.(\d+))?)?$")
_DAYS = re.compile(r"^\d+$")
_ITEM = re.compile(r"^(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/\d+)?$")
# field name, lowest, highest value, whether 3-letter names are allowed (NCRONTAB's ranges)
_FIELDS = (("second", 0, 59, False), ("minute", 0, 59, False), ("hour", 0, 23, False),
           ("day", 1, 31, False), ("month", 1, 12, True), ("day-of-week", 0, 6, True))
_NAMES = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
          "sun", "mon", "tue", "wed", "thu", "fri", "sat"}
# Windows zone ids seen in WEBSITE_TIME_ZONE (Azure on Windows), mapped to IANA names (CLDR windowsZones).
WINDOWS_ZONES = {
    "UTC": "UTC", "GMT Standard Time": "Europe/London", "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris", "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw", "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev", "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow", "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago", "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix", "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage", "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax", "E. South America Standard Time": "America/Sao_Paulo",
    "India Standard Time": "Asia/Kolkata", "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo", "Korea Standard Time": "Asia/Seoul",
    "Singapore Standard Time": "Asia/Singapore", "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland", "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai", "Israel Standard Time": "Asia/Jerusalem",
}


class ScheduleError(FuncemuError):
    def __init__(self, expression: str, function: str | None = None, detail: str = "") -> None:
        where = f"Function '{function}': " if function else ""
        super().__init__(f"{where}The schedule expression '{expression}' was not recognized as a valid cron "
                         f"expression or timespan string.{' ' + detail if detail else ''}")
        self.expression = expression


class TimeZoneError(FuncemuError):
    pass


class Schedule(Protocol):
    @property
    def expression(self) -> str: ...

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment`, in UTC (aware datetimes; UTC values avoid the
        fold=1 comparison pitfalls of local times that occur twice)."""

    def describe(self) -> str:
        """As the host's ToString: `Cron: '...'` or `Constant: hh:mm:ss`."""

    @property
    def adjust_for_dst(self) -> bool: ...


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    zone: tzinfo

    @property
    def adjust_for_dst(self) -> bool:
        return True

    @property
    def has_seconds(self) -> bool:
        return len(self.expression.split()) != 5

    def next_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone).replace(tzinfo=None)
        wall = croniter(self.expression, local, day_or=False, second_at_beginning=self.has_seconds).get_next(datetime)
        return place(wall, self.zone).astimezone(timezone.utc)

    def describe(self) -> str:
        return f"Cron: '{self.expression}'"


@dataclass(frozen=True)
class ConstantSchedule:
    """A TimeSpan schedule: a constant interval from the moment the listener starts."""

    expression: str
    interval: timedelta

    @property
    def adjust_for_dst(self) -> bool:
        return False

    def next_after(self, moment: datetime) -> datetime:
        return (moment + self.interval).astimezone(timezone.utc)

    def describe(self) -> str:
        return f"Constant: {timespan_text(self.interval)}"


def place(wall: datetime, zone: tzinfo) -> datetime:
    """A local wall-clock time as an instant: ambiguous => the later one, skipped => shifted by the gap."""
    later = wall.replace(tzinfo=zone, fold=1)
    if _round_trips(later, wall):
        return later
    return wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc).astimezone(zone)


def _round_trips(aware: datetime, wall: datetime) -> bool:
    return aware.astimezone(timezone.utc).astimezone(aware.tzinfo).replace(tzinfo=None) == wall


def parse_schedule(expression: str, zone: tzinfo, function: str | None = None) -> Schedule:
    """A cron schedule if the text is valid NCRONTAB, else a TimeSpan; ScheduleError otherwise."""
    text = expression.strip()
    fields = text.split()
    interval = _parse_timespan(text)
    if len(fields) in (5, 6):
        problem = _cron_problem(fields)
        if problem is None:
            return _occurring(CronSchedule(" ".join(fields), zone), expression, function)
        if interval is None:
            raise ScheduleError(expression, function, problem)
    if interval is None:
        raise ScheduleError(expression, function)
    if interval <= timedelta(0):
        raise ScheduleError(expression, function, "A TimeSpan schedule must be longer than zero.")
    return ConstantSchedule(text, interval)


def _occurring(schedule: CronSchedule, expression: str, function: str | None) -> CronSchedule:
    try:
        schedule.next_after(datetime.now(schedule.zone))
    except CroniterBadDateError:
        raise ScheduleError(expression, function, "It never occurs.") from None
    return schedule


def _cron_problem(fields: list[str]) -> str | None:
    names = _FIELDS if len(fields) == 6 else _FIELDS[1:]
    for text, (name, low, high, named) in zip(fields, names, strict=True):
        for item in text.split(","):
            match = _ITEM.match(item)
            if not match:
                return f"The {name} field '{text}' is not NCRONTAB syntax."
            bad = [b for b in match.group(1).split("-") if b != "*" and not _bound_ok(b, low, high, named)]
            if bad and bad[0].isdigit():
                return f"The {name} field '{text}' has {bad[0]}, outside {low}-{high}."
            if bad:
                return (f"The {name} field '{text}' has '{bad[0]}', which is not NCRONTAB syntax "
                        "(NCRONTAB has no L, W, #, ? or H).")
    if not croniter.is_valid(" ".join(fields), second_at_beginning=len(fields) == 6):
        return "It is not a valid cron expression."
    return None


def _bound_ok(bound: str, low: int, high: int, named: bool) -> bool:
    if bound.isdigit():
        return low <= int(bound) <= high
    return named and bound.lower() in _NAMES


def _parse_timespan(text: str) -> timedelta | None:
    """.NET TimeSpan.TryParse for the forms used in schedules: `d`, `[d.]hh:mm[:ss[.fffffff]]`."""
    if _DAYS.match(text):
        return timedelta(days=int(text))
    match = _TIMESPAN.match(text)
    if not match:
        return None
    days, hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        return None
    return timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0),
                     microseconds=int((fraction or "0")[:6].ljust(6, "0")))


def local_zone(environ: Mapping[str, str] | None = None) -> tzinfo:
    """WEBSITE_TIME_ZONE (IANA or Windows id), else TZ, else the system's zone."""
    environ = os.environ if environ is None else environ
    for setting in ("WEBSITE_TIME_ZONE", "TZ"):
        name = (environ.get(setting) or "").strip().lstrip(":")
        if name:
            return _zone(setting, name)
    return dateutil_tz.tzlocal()


def _zone(setting: str, name: str) -> tzinfo:
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeZoneError(f"{setting} '{name}' is not a known time zone: use an IANA name such as "
                            "'Europe/Berlin' or 'America/New_York' (or a common Windows zone id).") from None


def occurrences(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


def fires_more_than_once_a_minute(schedule: Schedule, start: datetime) -> bool:
    """The host turns useMonitor off for such schedules."""
    if isinstance(schedule, ConstantSchedule):
        return schedule.interval < timedelta(minutes=1)
    times = occurrences(schedule, start, 8)
    return any(b - a < timedelta(minutes=1) for a, b in zip(times, times[1:], strict=False))
