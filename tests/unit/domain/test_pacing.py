"""Quiet hours in the recipient's zone (profile, number, default) across DST changes, and the
settings' validation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from smsbridge.domain.pacing import (
    QuietHours,
    _number_zone,
    _single_zone_countries,
    number_zone,
    parse_frequency_cap,
    parse_quiet_hours,
)
from smsbridge.errors import FieldError

NIGHT = QuietHours(time(21, 0), time(8, 0), "America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("phone", "zone"),
    [
        ("+33612345678", "Europe/Paris"),
        ("+442071234567", "Europe/London"),
        ("+447911123456", None),  # UK mobiles: London, Jersey, Guernsey, Isle of Man
        ("+81312345678", "Asia/Tokyo"),
        ("+12125550123", "America/New_York"),  # 212: New York's area code, one zone
        ("+14155550123", "America/Los_Angeles"),
        ("+79161234567", None),  # a Russian mobile spans zones: no single answer
    ],
)
def test_the_zone_of_a_number(phone: str, zone: str | None) -> None:
    assert number_zone(phone) == zone


def test_profile_zone_then_number_then_default() -> None:
    assert NIGHT.zone("+33612345678", "Asia/Tokyo").key == "Asia/Tokyo"
    assert NIGHT.zone("+33612345678", None).key == "Europe/Paris"
    assert NIGHT.zone("+33612345678", "Not/AZone").key == "Europe/Paris"
    assert NIGHT.zone("+79161234567", None).key == "America/New_York"  # several: default


@pytest.mark.parametrize(
    ("due", "released"),
    [
        (utc(2026, 6, 10, 12, 0), None),  # 14:00 in Paris: fine
        (utc(2026, 6, 10, 18, 59), None),  # 20:59 local
        (utc(2026, 6, 10, 19, 0), utc(2026, 6, 11, 6, 0)),  # 21:00 → 08:00 next day (CEST)
        (utc(2026, 6, 10, 23, 30), utc(2026, 6, 11, 6, 0)),  # 01:30 local
        (utc(2026, 6, 11, 5, 59), utc(2026, 6, 11, 6, 0)),  # 07:59 local
        (utc(2026, 6, 11, 6, 0), None),  # 08:00 local: the window is over
        (utc(2026, 1, 10, 20, 30), utc(2026, 1, 11, 7, 0)),  # winter (CET): 08:00 = 07:00 UTC
    ],
)
def test_release_in_paris(due: datetime, released: datetime | None) -> None:
    assert NIGHT.release(due, PARIS) == released


def test_dst_boundaries() -> None:
    # Paris springs forward on 2026-03-29 at 02:00 → 03:00: the night is an hour shorter,
    # 08:00 local is 06:00 UTC that morning, 07:00 UTC the morning before.
    assert NIGHT.release(utc(2026, 3, 28, 22, 0), PARIS) == utc(2026, 3, 29, 6, 0)
    assert NIGHT.release(utc(2026, 3, 27, 22, 0), PARIS) == utc(2026, 3, 28, 7, 0)
    # …and falls back on 2026-10-25 at 03:00 → 02:00: 08:00 local is 07:00 UTC again.
    assert NIGHT.release(utc(2026, 10, 24, 22, 0), PARIS) == utc(2026, 10, 25, 7, 0)
    # A window ending inside the spring gap (02:30 does not exist) ends at 03:30 CEST.
    gap = QuietHours(time(1, 0), time(2, 30))
    assert gap.release(utc(2026, 3, 29, 0, 15), PARIS) == utc(2026, 3, 29, 1, 30)


def test_a_recipient_in_another_zone_than_the_server() -> None:
    # 23:00 UTC is 08:00 in Tokyo (no quiet) but 19:00 in New York (no quiet) and 00:00 in
    # Paris (quiet): the same instant, three answers.
    instant = utc(2026, 6, 10, 23, 0)
    assert NIGHT.release(instant, ZoneInfo("Asia/Tokyo")) is None
    assert NIGHT.release(instant, ZoneInfo("America/New_York")) is None
    assert NIGHT.release(instant, PARIS) == utc(2026, 6, 11, 6, 0)


def test_a_daytime_window() -> None:
    lunch = QuietHours(time(12, 0), time(14, 0))
    utc_zone = ZoneInfo("UTC")
    assert lunch.release(utc(2026, 6, 10, 13, 0), utc_zone) == utc(2026, 6, 10, 14, 0)
    assert lunch.release(utc(2026, 6, 10, 14, 0), utc_zone) is None
    assert lunch.release(utc(2026, 6, 10, 11, 59), utc_zone) is None


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ({"start": "21:00", "end": "08:00"}, set()),
        ({"start": "9pm", "end": "08:00"}, {"quiet_hours.start"}),
        ({"start": "21:00", "end": "24:00"}, {"quiet_hours.end"}),
        ({"start": "08:00", "end": "08:00"}, {"quiet_hours.end"}),
        (
            {"start": "21:00", "end": "08:00", "default_timezone": "Mars/Olympus"},
            {"quiet_hours.default_timezone"},
        ),
        ({"start": "21:00", "end": "08:00", "zone": "x"}, {"quiet_hours.zone"}),
        ("21-08", {"quiet_hours"}),
    ],
)
def test_quiet_hours_validation(raw: object, fields: set[str]) -> None:
    errors: list[FieldError] = []
    parse_quiet_hours(raw, errors)
    assert {e.field for e in errors} == fields


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ({"max_messages": 2, "window_hours": 24}, set()),
        ({"max_messages": 0, "window_hours": 24}, {"frequency_cap.max_messages"}),
        ({"max_messages": True, "window_hours": 24}, {"frequency_cap.max_messages"}),
        ({"max_messages": 2, "window_hours": 0}, {"frequency_cap.window_hours"}),
        ({"max_messages": 2}, {"frequency_cap.window_hours"}),
        ([], {"frequency_cap"}),
    ],
)
def test_frequency_cap_validation(raw: object, fields: set[str]) -> None:
    errors: list[FieldError] = []
    cap = parse_frequency_cap(raw, errors)
    assert {e.field for e in errors} == fields
    if not fields:
        assert cap is not None and cap.window == timedelta(hours=24)


def test_single_zone_countries_answer_like_libphonenumber_for_every_valid_number() -> None:
    """The country-code shortcut gives libphonenumber's own answer for the example numbers of
    every region and number type it has (valid numbers); only a number it does not recognise
    in a one-zone country now gets the country's zone instead of none."""
    checked = shortcut = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (
            PhoneNumberType.MOBILE,
            PhoneNumberType.FIXED_LINE,
            PhoneNumberType.TOLL_FREE,
            PhoneNumberType.VOIP,
            PhoneNumberType.PREMIUM_RATE,
        ):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            phone = phonenumbers.format_number(example, PhoneNumberFormat.E164)
            assert number_zone(phone) == _number_zone(phone), (region, kind, phone)
            checked += 1
            shortcut += str(example.country_code) in _single_zone_countries()
    assert checked > 500 and shortcut > 300
    assert number_zone("+3361234") == "Europe/Paris"  # too short to be valid: the country's
    assert _number_zone("+3361234") is None
