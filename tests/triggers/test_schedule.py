"""NCRONTAB and TimeSpan schedules, time zones and DST, as the timer trigger uses them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from funcemu.triggers.schedule import (
    ConstantSchedule,
    CronSchedule,
    ScheduleError,
    TimeZoneError,
    fires_more_than_once_a_minute,
    local_zone,
    occurrences,
    parse_schedule,
    timespan_text,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
       zone: tzinfo = UTC) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


def test_six_fields_have_seconds_first() -> None:
    schedule = parse_schedule("*/15 * * * * *", UTC)
    assert isinstance(schedule, CronSchedule) and schedule.has_seconds
    assert occurrences(schedule, at(2024, 5, 1, 10, 0, 7), 3) == [
        at(2024, 5, 1, 10, 0, 15), at(2024, 5, 1, 10, 0, 30), at(2024, 5, 1, 10, 0, 45)]


def test_five_fields_have_no_seconds() -> None:
    schedule = parse_schedule("30 9 * * *", UTC)
    assert schedule.next_after(at(2024, 5, 1, 10, 0)) == at(2024, 5, 2, 9, 30)


def test_the_classic_every_five_minutes() -> None:
    assert parse_schedule("0 */5 * * * *", UTC).next_after(at(2024, 5, 1, 10, 2, 59)) == at(2024, 5, 1, 10, 5)


def test_day_and_weekday_must_both_match_as_in_ncrontab() -> None:
    # Friday the 13th: NCRONTAB ANDs day-of-month and day-of-week (Vixie cron would OR them)
    assert parse_schedule("0 0 0 13 * FRI", UTC).next_after(at(2024, 1, 1)) == at(2024, 9, 13)


def test_names_and_ranges() -> None:
    schedule = parse_schedule("0 0 9 * * MON-FRI", UTC)
    assert schedule.next_after(at(2024, 5, 3, 10)) == at(2024, 5, 6, 9)  # Friday 10:00 -> Monday 09:00


@pytest.mark.parametrize(("text", "interval"), [
    ("00:05:00", timedelta(minutes=5)),
    ("01:00", timedelta(hours=1)),
    ("1.02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ("00:00:01.5", timedelta(seconds=1.5)),
    ("2", timedelta(days=2)),
])
def test_timespan_schedules_are_constant_intervals(text: str, interval: timedelta) -> None:
    schedule = parse_schedule(text, UTC)
    assert isinstance(schedule, ConstantSchedule)
    assert schedule.next_after(at(2024, 5, 1)) == at(2024, 5, 1) + interval
    assert not schedule.adjust_for_dst


def test_timespan_text_is_dotnet_style() -> None:
    assert timespan_text(timedelta(minutes=5)) == "00:05:00"
    assert timespan_text(timedelta(days=1, seconds=4)) == "1.00:00:04"
    assert parse_schedule("00:05:00", UTC).describe() == "Constant: 00:05:00"


@pytest.mark.parametrize(("text", "detail"), [
    ("every minute", ""),
    ("0 60 * * * *", "The minute field '60' has 60, outside 0-59."),
    ("0 0 0 * * 7", "The day-of-week field '7' has 7, outside 0-6."),
    ("0 0 0 L * *", "not NCRONTAB syntax"),
    ("0 0 0 ? * *", "not NCRONTAB syntax"),
    ("0 0 12 * * MON#2", "not NCRONTAB syntax"),
    ("0 0 0 31 2 *", "It never occurs."),
    ("00:00:00", "longer than zero"),
    ("25:00:00", ""),
    ("* * * *", ""),
])
def test_invalid_schedules_say_so_in_the_hosts_words(text: str, detail: str) -> None:
    with pytest.raises(ScheduleError) as error:
        parse_schedule(text, UTC, function="cleanup")
    message = str(error.value)
    assert message.startswith(f"Function 'cleanup': The schedule expression '{text}' was not recognized as a "
                              "valid cron expression or timespan string.")
    assert detail in message


def test_local_time_zone_is_used() -> None:
    schedule = parse_schedule("0 0 9 * * *", BERLIN)
    assert schedule.next_after(at(2024, 1, 10, 12)) == at(2024, 1, 11, 8)   # 09:00 CET
    assert schedule.next_after(at(2024, 7, 10, 12)) == at(2024, 7, 11, 7)   # 09:00 CEST


def test_a_time_skipped_by_spring_forward_fires_after_the_jump() -> None:
    schedule = parse_schedule("0 30 2 * * *", BERLIN)
    fired = schedule.next_after(at(2024, 3, 30, 12))
    assert fired == at(2024, 3, 31, 1, 30)                      # 03:30 CEST, one hour after 02:30 CET would be
    assert fired.astimezone(BERLIN).strftime("%H:%M%z") == "03:30+0200"


def test_a_time_repeated_by_fall_back_fires_once_in_standard_time() -> None:
    schedule = parse_schedule("0 30 2 * * *", BERLIN)
    times = occurrences(schedule, at(2024, 10, 26, 12), 2)
    assert times == [at(2024, 10, 27, 1, 30), at(2024, 10, 28, 1, 30)]


def test_hourly_runs_keep_going_across_fall_back() -> None:
    schedule = parse_schedule("0 0 * * * *", BERLIN)
    times = occurrences(schedule, at(2024, 10, 26, 22, 30), 4)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert times[0] == at(2024, 10, 26, 23)


def test_more_than_once_a_minute_turns_the_monitor_off() -> None:
    now = at(2024, 5, 1)
    assert fires_more_than_once_a_minute(parse_schedule("*/10 * * * * *", UTC), now)
    assert fires_more_than_once_a_minute(parse_schedule("00:00:30", UTC), now)
    assert not fires_more_than_once_a_minute(parse_schedule("0 * * * * *", UTC), now)
    assert not fires_more_than_once_a_minute(parse_schedule("0 */5 * * *", UTC), now)


@pytest.mark.parametrize(("environ", "expected"), [
    ({"WEBSITE_TIME_ZONE": "Europe/Berlin", "TZ": "Asia/Tokyo"}, "Europe/Berlin"),
    ({"WEBSITE_TIME_ZONE": "Eastern Standard Time"}, "America/New_York"),
    ({"TZ": ":Asia/Tokyo"}, "Asia/Tokyo"),
    ({"TZ": "UTC"}, "UTC"),
])
def test_time_zone_settings(environ: dict[str, str], expected: str) -> None:
    assert str(local_zone(environ)) == expected


def test_without_settings_the_system_zone_is_used() -> None:
    zone = local_zone({})
    assert datetime(2024, 1, 1, tzinfo=zone).utcoffset() is not None


def test_an_unknown_time_zone_names_the_setting() -> None:
    with pytest.raises(TimeZoneError, match="WEBSITE_TIME_ZONE 'Mars/Olympus' is not a known time zone"):
        local_zone({"WEBSITE_TIME_ZONE": "Mars/Olympus"})
