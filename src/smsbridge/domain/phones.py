"""Phone numbers: normalization to E.164."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber
from phonenumbers import phonenumberutil as _util

from smsbridge.errors import InvalidInput

_CANONICAL = re.compile(r"\+[1-9][0-9]{6,16}")
"""A number already written as E.164 (``+`` and ASCII digits only): most numbers we see."""
_REFUSED_LENGTHS = (
    _util.ValidationResult.TOO_SHORT,
    _util.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    _util.ValidationResult.INVALID_LENGTH,
)


def normalize_phone(raw: str, field: str, default_region: str | None = None) -> str:
    """``raw`` in E.164 (``+33612345678``); national formats need ``default_region``."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise InvalidInput.one(field, "a phone number is required")
    if _CANONICAL.fullmatch(text) and (e164 := _canonical(text)) is not None:
        return e164
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        hint = "" if text.startswith("+") or default_region else " (use the +<country code> form)"
        raise InvalidInput.one(field, f"{text!r} is not a phone number{hint}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput.one(field, f"{text!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _canonical(text: str) -> str | None:
    """The E.164 form of ``text`` ("+" and digits), or None to take the full path.

    ``phonenumbers.parse`` spends two thirds of its ~16 µs on what such input never has
    (extensions, letters, IDD prefixes, separators, ``tel:`` URIs). These are the steps it
    takes for it once those are ruled out — its own functions, in its order: country code,
    national prefix stripped when what remains has a possible length, leading zeros — then the
    same possibility check and formatting. Anything else (no such country code, an impossible
    number: its error message comes from the full path) returns None.
    ``tests/unit/domain/test_phones.py`` holds it equal to ``parse`` on every country code.
    """
    country_code, national = _util._extract_country_code(text[1:])
    if country_code == 0 or len(national) < _util._MIN_LENGTH_FOR_NSN:
        return None
    region = _util.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return None
    _, stripped, _ = _util._maybe_strip_national_prefix_carrier_code(national, metadata)
    if _util._test_number_length(stripped, metadata) not in _REFUSED_LENGTHS:
        national = stripped
    if not _util._MIN_LENGTH_FOR_NSN <= len(national) <= _util._MAX_LENGTH_FOR_NSN:
        return None
    number = PhoneNumber(country_code=country_code)
    _util._set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
