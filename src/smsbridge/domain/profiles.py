"""Profiles: the people a marketer messages, checked field by field.

A profile is ``external_id`` (the caller's own identifier), a phone number normalized to
E.164, free JSON ``attributes`` (what templates read as ``profile.<name>``) and an optional
IANA ``timezone``. The same checks serve ``PUT /profiles/{id}`` and every import line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from smsbridge.domain.phones import normalize_phone
from smsbridge.errors import FieldError, InvalidInput, phrase

MAX_EXTERNAL_ID = 255
MAX_ATTRIBUTES_BYTES = 16_384
FIELDS = ("external_id", "phone", "attributes", "timezone")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Profile:
    external_id: str
    phone: str
    attributes: dict[str, Any]
    timezone: str | None = None


def check_external_id(value: object, field: str = "external_id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput.one(field, phrase("is required (a non-empty string)"))
    if len(value) > MAX_EXTERNAL_ID:
        raise InvalidInput.one(
            field, phrase("is longer than %(most)s characters", most=MAX_EXTERNAL_ID)
        )
    if _CONTROL.search(value):
        raise InvalidInput.one(field, phrase("must not contain control characters"))
    return value


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_timezone(value: object, field: str = "timezone") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _known_zone(value):
        raise InvalidInput.one(
            field, phrase("%(zone)r is not an IANA time zone (e.g. Europe/Paris)", zone=value)
        )
    return value


def check_attributes(value: object, field: str = "attributes") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput.one(field, phrase("must be a JSON object"))
    errors = [
        FieldError(
            f"{field}.{name}",
            phrase(
                "attribute names are letters, digits and _ (templates read them as profile.<name>)"
            ),
        )
        for name in value
        if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name)
    ]
    if errors:
        raise InvalidInput(errors)
    try:
        size = len(orjson.dumps(value))
    except TypeError as exc:
        raise InvalidInput.one(field, f"is not JSON: {exc}") from None
    if size > MAX_ATTRIBUTES_BYTES:
        raise InvalidInput.one(
            field,
            phrase(
                "is %(size)s bytes of JSON; the limit is %(most)s",
                size=size,
                most=MAX_ATTRIBUTES_BYTES,
            ),
        )
    errors = [
        FieldError(f"{field}.{name}", phrase("must not contain NUL characters (U+0000)"))
        for name, item in value.items()
        if "\x00" in name or _holds_nul(item)
    ]
    if errors:  # PostgreSQL cannot store it (SQLite can): refused alike on both
        raise InvalidInput(errors)
    return value


def _holds_nul(value: object) -> bool:
    pending = [value]  # without recursion: the value is as deep as its JSON allowed
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def parse_profile(
    data: Mapping[str, Any], *, external_id: str | None = None, region: str | None = None
) -> Profile:
    """A profile from a request body or an import line; every problem, field by field.

    ``external_id`` comes from the URL for ``PUT`` (the body may repeat it, identically).
    """
    errors: list[FieldError] = []
    unknown = [k for k in data if k not in FIELDS]
    errors.extend(
        FieldError(
            str(key),
            phrase("unknown field (custom values go under attributes, e.g. attributes.firstName)"),
        )
        for key in unknown
    )
    if external_id is not None and data.get("external_id") not in (None, external_id):
        errors.append(FieldError("external_id", phrase("differs from the id in the URL")))
    identifier = external_id if external_id is not None else data.get("external_id")

    def attempt(check: Any, *args: Any) -> Any:
        try:
            return check(*args)
        except InvalidInput as exc:
            errors.extend(exc.errors)
            return None

    checked_id = attempt(check_external_id, identifier)
    phone = attempt(normalize_phone, data.get("phone"), "phone", region)
    attributes = attempt(check_attributes, data.get("attributes"))
    timezone = attempt(check_timezone, data.get("timezone"))
    if errors:
        raise InvalidInput(errors)
    return Profile(checked_id, phone, attributes, timezone)


def template_view(profile: Profile | Mapping[str, Any]) -> dict[str, Any]:
    """What templates see as ``profile``: attributes plus phone, external_id and timezone."""
    if isinstance(profile, Profile):
        attributes, fixed = profile.attributes, profile
    else:
        attributes = profile.get("attributes") or {}
        fixed = Profile(profile["external_id"], profile["phone"], {}, profile.get("timezone"))
    view = dict(attributes)
    view["phone"] = fixed.phone
    view["external_id"] = fixed.external_id
    view["timezone"] = fixed.timezone
    return view
