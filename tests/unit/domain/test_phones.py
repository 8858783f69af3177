"""normalize_phone: E.164 normalization and its errors."""

from __future__ import annotations

import pytest

from smsbridge.domain.phones import normalize_phone
from smsbridge.errors import FieldError, InvalidInput


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+33612345678", None, "+33612345678"),
        (" +33 6 12 34 56 78 ", None, "+33612345678"),
        ("+33 (0)6 12-34-56-78", None, "+33612345678"),
        ("0612345678", "FR", "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+1 650-253-0000", None, "+16502530000"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("+15550001111", "FR", "+15550001111"),
        ("+447911123456", None, "+447911123456"),
    ],
)
def test_normalize_phone(raw: str, region: str | None, e164: str) -> None:
    assert normalize_phone(raw, "to", region) == e164


@pytest.mark.parametrize("raw", ["", "   ", None, 33612345678])
def test_a_number_is_required(raw: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw, "to")  # type: ignore[arg-type]

    assert caught.value.errors == [FieldError("to", "a phone number is required")]


def test_national_number_without_a_region_gets_a_hint() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone("0612345678", "recipients[2]")

    assert caught.value.errors == [
        FieldError(
            "recipients[2]", "'0612345678' is not a phone number (use the +<country code> form)"
        )
    ]


@pytest.mark.parametrize(("raw", "region"), [("+999123", None), ("hello", "FR")])
def test_text_that_is_not_a_number_has_no_hint_when_the_form_is_right(
    raw: str, region: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw, "from", region)

    assert caught.value.errors == [FieldError("from", f"{raw!r} is not a phone number")]


@pytest.mark.parametrize("raw", ["+3361", "+3361234567890123", "+1 650"])
def test_impossible_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw, "to")

    assert caught.value.errors == [FieldError("to", f"{raw!r} is not a possible phone number")]
