"""normalize_phone: E.164 normalization and its errors."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import phonenumberutil

from smsbridge.domain import phones
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


def _full_path(text: str, region: str | None) -> str:
    """What phonenumbers itself says (the oracle): E.164, or the refusal."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return "not a number"
    if not phonenumbers.is_possible_number(number):
        return "impossible"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _ours(text: str, region: str | None) -> str:
    try:
        return normalize_phone(text, "to", region)
    except InvalidInput as refused:
        message = refused.errors[0].message
        return "impossible" if "not a possible" in message else "not a number"


@pytest.mark.parametrize("region", [None, "FR", "US", "IT"])
def test_the_e164_shortcut_agrees_with_phonenumbers_on_every_country_code(
    region: str | None,
) -> None:
    """Numbers already written in E.164 skip most of ``phonenumbers.parse`` (profile imports
    and campaigns hand us millions). Against the library itself: every country calling code,
    national numbers of every length, with and without a leading zero or national prefix."""
    rng = random.Random(f"e164-{region}")
    codes = sorted(phonenumberutil.COUNTRY_CODE_TO_REGION_CODE)
    shortcut = 0
    for _ in range(6_000):
        code = rng.choice(codes)
        national = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 15)))
        if rng.random() < 0.25:
            national = rng.choice(["0", "00", "1", "8", "9"]) + national
        text = f"+{code}{national}"
        assert _ours(text, region) == _full_path(text, region), text
        shortcut += phones._CANONICAL.fullmatch(text) is not None and bool(phones._canonical(text))
    assert shortcut > 1_000  # the shortcut was taken, not only the full path
    for text in ("+390612345678", "+3903123456", "+2250701234567", "+5491123456789", "+79"):
        assert _ours(text, region) == _full_path(text, region), text
