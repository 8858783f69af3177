"""Phone numbers: normalization to E.164."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers import phonenumberutil as _util

from smsbridge.errors import InvalidInput, phrase

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
        raise InvalidInput.one(field, phrase("a phone number is required"))
    if _CANONICAL.fullmatch(text) and (e164 := _canonical(text)) is not None:
        return e164
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        if text.startswith("+") or default_region:
            problem = phrase("%(number)r is not a phone number", number=text)
        else:
            problem = phrase(
                "%(number)r is not a phone number (use the +<country code> form)", number=text
            )
        raise InvalidInput.one(field, problem) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput.one(
            field, phrase("%(number)r is not a possible phone number", number=text)
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_CALLING_CODES = frozenset(str(code) for code in _util.COUNTRY_CODE_TO_REGION_CODE)
_POSSIBLE = (_util.ValidationResult.IS_POSSIBLE, _util.ValidationResult.IS_POSSIBLE_LOCAL_ONLY)


def _canonical(text: str) -> str | None:
    """The E.164 form of ``text`` ("+" and digits), or None to take the full path.

    ``phonenumbers.parse`` spends two thirds of its ~16 µs on what such input never has
    (extensions, letters, IDD prefixes, separators, ``tel:`` URIs). These are the steps it
    takes for it once those are ruled out — its own functions, in its order: country code,
    national prefix stripped when what remains has a possible length — then the same
    possibility check (``is_possible_number``: the length of the national significant number
    against the region's metadata) and E.164 formatting ("+", the code, that number: for
    digits, building a ``PhoneNumber`` and formatting it gives back the same digits, leading
    zeros included). Anything else (no such country code, an impossible number: its error
    message comes from the full path) returns None.
    ``tests/unit/domain/test_phones.py`` holds it equal to ``parse`` on every country code.
    """
    digits = text[1:]
    # _extract_country_code: the shortest prefix of 1 to 3 digits that is a calling code
    for length in (1, 2, 3):
        if digits[:length] in _CALLING_CODES:
            code, national = digits[:length], digits[length:]
            break
    else:
        return None
    if len(national) < _util._MIN_LENGTH_FOR_NSN:
        return None
    country_code = int(code)
    region = _util.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return None
    _, stripped, _ = _util._maybe_strip_national_prefix_carrier_code(national, metadata)
    if _util._test_number_length(stripped, metadata) not in _REFUSED_LENGTHS:
        national = stripped
    if not _util._MIN_LENGTH_FOR_NSN <= len(national) <= _util._MAX_LENGTH_FOR_NSN:
        return None
    if _util._test_number_length(national, metadata) not in _POSSIBLE:
        return None
    return f"+{code}{national}"
