"""Phone numbers: normalization to E.164."""

from __future__ import annotations

import phonenumbers

from smsbridge.errors import InvalidInput


def normalize_phone(raw: str, field: str, default_region: str | None = None) -> str:
    """``raw`` in E.164 (``+33612345678``); national formats need ``default_region``."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise InvalidInput.one(field, "a phone number is required")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        hint = "" if text.startswith("+") or default_region else " (use the +<country code> form)"
        raise InvalidInput.one(field, f"{text!r} is not a phone number{hint}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput.one(field, f"{text!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
