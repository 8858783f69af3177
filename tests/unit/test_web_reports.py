"""The admin's report pages without a server: the surface report's window of days, the buckets
its charts show, and where the bars are drawn (issue 18, item 11)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from smsbridge.web.reports import MIN_SLOTS, WIDTH, _charts, _window, _within

TODAY = date(2026, 3, 15)


def test_the_default_window_is_the_last_seven_days_ending_today() -> None:
    assert _window("", "", TODAY) == (date(2026, 3, 9), TODAY, [])


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("", "2026-03-16"),  # tomorrow
        ("2026-03-10", "2026-04-30"),
        ("", "2099-01-01"),
    ],
)
def test_the_window_never_goes_past_today(start: str, end: str) -> None:
    first, last, problems = _window(start, end, TODAY)
    assert last == TODAY
    assert first <= last
    assert problems == ["to: after today; the report stops today"]


def test_a_window_starting_after_today_falls_back_to_the_last_seven_days() -> None:
    first, last, problems = _window("2026-03-20", "2026-03-25", TODAY)
    assert (first, last) == (date(2026, 3, 9), TODAY)
    assert "from: must not be after `to`" in problems


def test_a_past_window_is_kept_as_asked() -> None:
    assert _window("2026-01-01", "2026-01-31", TODAY) == (date(2026, 1, 1), date(2026, 1, 31), [])


def test_bad_dates_are_named() -> None:
    first, last, problems = _window("yesterday", "2026-13-01", TODAY)
    assert (first, last) == (date(2026, 3, 9), TODAY)
    assert problems == ["to: not a date (YYYY-MM-DD)", "from: not a date (YYYY-MM-DD)"]


def _day(day: date, sent: int = 0, delivered: int = 0, clicks: int = 0) -> dict[str, Any]:
    at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"at": at, "sent": sent, "delivered": delivered, "clicks": clicks}


def test_the_charts_stop_at_the_windows_end_when_nothing_happened_after() -> None:
    """The service's timeline of a window ending today has a bucket for tomorrow (the end is
    exclusive: tomorrow 00:00); the page does not draw that future day."""
    days = [TODAY - timedelta(days=n) for n in range(6, -2, -1)]  # 7 days and tomorrow
    timeline = [_day(d, sent=1) for d in days[:-1]] + [_day(days[-1])]
    ends = datetime(2026, 3, 16, tzinfo=UTC)
    kept = _within(timeline, ends)
    assert [p["at"].date() for p in kept] == days[:-1]
    assert kept[-1]["at"].date() == TODAY


def test_a_late_delivery_after_a_past_window_stays_on_the_chart() -> None:
    timeline = [_day(date(2026, 1, 30), sent=2), _day(date(2026, 1, 31)), _day(date(2026, 2, 1))]
    timeline[-1]["delivered"] = 1  # a delivery report the day after the window
    assert _within(timeline, datetime(2026, 2, 1, tzinfo=UTC)) == timeline


@pytest.mark.parametrize("buckets", [1, 2, 7, 8, 24, 25, 200])
def test_the_bars_span_the_whole_width(buckets: int) -> None:
    timeline = [_day(TODAY - timedelta(days=n), sent=n) for n in range(buckets)]
    bars = _charts({"timeline": timeline})["bars"]
    assert len(bars) == buckets
    slot = WIDTH / buckets
    for index, (x, width) in enumerate(bars):  # each bar centred in its share of the width
        assert 0 < width <= min(slot, WIDTH / MIN_SLOTS) * 0.8 + 0.01
        assert x + width / 2 == pytest.approx((index + 0.5) * slot, abs=0.01)
    last_x, last_width = bars[-1]
    assert last_x + last_width > WIDTH * (1 - 1 / buckets)  # the last bar is in the last share
    assert bars[0][0] < WIDTH / buckets


def test_a_chart_of_nothing_has_no_bars() -> None:
    chart = _charts({"timeline": []})
    assert chart["bars"] == [] and chart["first"] is None
