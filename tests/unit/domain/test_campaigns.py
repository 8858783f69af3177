"""Campaign documents and audiences: what is accepted, and the field named when not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from smsbridge.domain.campaigns import (
    AttributeFilter,
    Audience,
    check_send_at,
    check_throttle,
    parse_audience,
    parse_campaign,
)
from smsbridge.errors import InvalidInput


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"all": True}, Audience(everyone=True)),
        ({"profile_ids": ["a", "b"]}, Audience(profile_ids=("a", "b"))),
        (
            {"filter": {"attributes.country": "FR", "attributes.tier": ["gold", "vip"]}},
            Audience(
                filters=(
                    AttributeFilter("country", ("FR",)),
                    AttributeFilter("tier", ("gold", "vip")),
                )
            ),
        ),
        (
            {"filter": {"attributes.optin": True}},
            Audience(filters=(AttributeFilter("optin", (True,)),)),
        ),
    ],
)
def test_audiences(document: dict[str, Any], expected: Audience) -> None:
    parsed = parse_audience(document)
    assert parsed == expected
    assert parse_audience(parsed.document()) == parsed  # stored form reads back the same


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (None, "audience"),
        ({"all": True, "profile_ids": ["a"]}, "audience"),
        ({"all": False}, "audience.all"),
        ({"profile_ids": "a"}, "audience.profile_ids"),
        ({"profile_ids": ["ok", ""]}, "audience.profile_ids[1]"),
        ({"filter": {}}, "audience.filter"),
        ({"filter": {"phone": "+33"}}, "audience.filter.phone"),
        ({"filter": {"attributes.x": {"nested": 1}}}, "audience.filter.attributes.x"),
        ({"filter": {"attributes.x": []}}, "audience.filter.attributes.x"),
        ({"segment": "vip"}, "audience.segment"),
    ],
)
def test_bad_audiences_name_the_field(document: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_audience(document)
    assert caught.value.errors[0].field == field


def test_campaign_reports_every_problem_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_campaign(
            {
                "name": "",
                "body": " ",
                "audience": {"all": True},
                "send_at": datetime(2026, 5, 1),
                "throttle_per_second": -1,
                "colour": "red",
            }
        )
    fields = {e.field for e in caught.value.errors}
    assert fields == {"name", "surface_id", "body", "send_at", "throttle_per_second", "colour"}


def test_campaign_defaults() -> None:
    draft = parse_campaign(
        {"name": " Spring ", "surface_id": "srf_1", "body": "Hi", "audience": {"all": True}}
    )
    assert draft.name == "Spring"
    assert draft.variables == {}
    assert draft.send_at is None and draft.throttle_per_second is None
    later = parse_campaign(
        {
            "name": "x",
            "surface_id": "s",
            "body": "b",
            "audience": {"all": True},
            "send_at": datetime(2026, 5, 1, tzinfo=UTC),
            "throttle_per_second": 5,
        }
    )
    assert later.throttle_per_second == 5.0


@pytest.mark.parametrize(
    "throttle",
    [1e-300, 0.001, 0, -1, 1e300, 10**400, float("nan"), float("inf"), -float("inf"), True, "5"],
)
def test_throttles_out_of_range_are_refused(throttle: object) -> None:
    """1e-300 used to pass and overflow every due time computed from it."""
    with pytest.raises(InvalidInput) as refused:
        check_throttle(throttle)
    assert [e.field for e in refused.value.errors] == ["throttle_per_second"]


@pytest.mark.parametrize("throttle", [None, 0.01, 1, 2.5, 10_000])
def test_throttles_in_range_are_kept(throttle: float | None) -> None:
    assert check_throttle(throttle) == throttle


def test_send_at_stays_clear_of_the_end_of_time() -> None:
    assert check_send_at(datetime(2999, 12, 31, 23, 59, tzinfo=UTC)) is not None
    with pytest.raises(InvalidInput) as refused:
        check_send_at(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert [e.field for e in refused.value.errors] == ["send_at"]
