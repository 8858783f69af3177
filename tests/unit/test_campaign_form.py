"""The admin's campaign form read into a campaign: every problem at once, in the form's words
(lines of the filter and id boxes, the named time zone), never the API's JSON paths."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from smsbridge.web.campaigns import read_form

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def _form(**fields: Any) -> dict[str, Any]:
    return {"name": "spring", "surface_id": "srf_1", "body": "Hi", "audience": ""} | fields


def test_a_good_form_is_the_api_document() -> None:
    form = read_form(
        _form(
            audience="filter",
            filter="country=FR\ncountry=BE\n\ntier = gold",
            send_at="2026-06-01T09:00",
            send_at_zone="Europe/Paris",
            throttle_per_second="2,5",  # a decimal comma is a decimal point
        ),
        NOW,
    )
    assert form.errors == {}
    assert form.document() == {
        "name": "spring",
        "surface_id": "srf_1",
        "body": "Hi",
        "audience": {"filter": {"attributes.country": ["FR", "BE"], "attributes.tier": "gold"}},
        "send_at": datetime(2026, 6, 1, 7, 0, tzinfo=UTC),
        "throttle_per_second": 2.5,
    }


def test_no_audience_is_chosen_for_you() -> None:
    form = read_form(_form(), NOW)
    assert form.audience is None
    assert "Choose who receives the campaign" in form.errors["audience"][0]
    # typing filters or ids chooses them; "every profile" is never guessed
    assert read_form(_form(filter="country=FR"), NOW).fields["audience"] == "filter"
    assert read_form(_form(profile_ids="a\nb"), NOW).fields["audience"] == "ids"
    assert read_form(_form(filter="x=1", profile_ids="a"), NOW).fields["audience"] == ""


def test_id_lines_are_named_by_their_line() -> None:
    form = read_form(_form(audience="ids", profile_ids="crm-1\n\n" + "x" * 300 + "\ncrm-\x01"), NOW)
    assert form.errors["profile_ids"] == [
        "Line 3: this id is longer than 255 characters.",
        "Line 4: this id must not contain control characters.",
    ]
    assert read_form(_form(audience="ids", profile_ids=" \n"), NOW).errors["profile_ids"] == [
        "List at least one profile id, one per line."
    ]


def test_send_at_is_read_in_the_named_zone() -> None:
    gap = read_form(
        _form(audience="all", send_at="2026-03-29T02:30", send_at_zone="Europe/Paris"), NOW
    )
    assert "does not exist in Europe/Paris" in gap.errors["send_at"][0]  # clocks go forward
    past = read_form(
        _form(audience="all", send_at="2026-03-20T12:30", send_at_zone="Asia/Tokyo"), NOW
    )
    assert past.errors["send_at"] == [
        "This time has passed (it is now 2026-03-20 21:00 in Asia/Tokyo). Choose a later "
        "time, or leave it empty to send at launch."
    ]
    unknown = read_form(
        _form(audience="all", send_at="2026-06-01T09:00", send_at_zone="Mars/Base"), NOW
    )
    assert "Unknown time zone “Mars/Base”" in unknown.errors["send_at_zone"][0]
    typed = read_form(_form(audience="all", send_at="June 1st"), NOW)
    assert "is not a date and time" in typed.errors["send_at"][0]
    spaced = read_form(_form(audience="all", send_at="2026-06-01 09:00"), NOW)
    assert spaced.send_at == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # UTC unless told
    assert spaced.fields["send_at"] == "2026-06-01T09:00"  # as datetime-local shows it back


def test_every_problem_at_once_in_form_order() -> None:
    form = read_form(
        {
            "name": "",
            "surface_id": "",
            "body": " ",
            "filter": "country",
            "throttle_per_second": "0",
        },
        NOW,
    )
    assert list(form.errors) == ["name", "surface_id", "body", "filter", "throttle_per_second"]
    said = " ".join(text for texts in form.errors.values() for text in texts)
    assert "audience." not in said and "attributes." not in said and "_per_" not in said
    assert "Line 1 (“country”) has no “=”" in said
