"""Campaigns: one message template sent to an audience of profiles.

A campaign is created as a ``draft``; ``launch`` makes it ``running``: its fan-out streams the
audience in batches into the outbox, recording every audience member it does not message as
an exclusion with a reason. It is ``completed`` once the fan-out is done and no message of
it is pending, or ``cancelled``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from smsbridge.domain.profiles import check_external_id
from smsbridge.errors import FieldError, InvalidInput, phrase

MAX_PROFILE_IDS = 10_000
MAX_FILTER_VALUES = 1_000
MIN_THROTTLE = 0.01
"""One message every 100 s: slower than that, a campaign of thousands would last years."""
MAX_THROTTLE = 10_000.0
LATEST_SEND_AT = datetime(3000, 1, 1, tzinfo=UTC)
"""Far beyond any plan, and far enough from the end of time (year 9999) that due times spaced
from it at the slowest throttle never overflow, whatever the audience."""
_FILTER_KEY = re.compile(r"attributes\.([A-Za-z_][A-Za-z0-9_]*)")


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ExclusionReason(StrEnum):
    OPTED_OUT = "opted_out"
    DUPLICATE = "duplicate"
    INVALID_PHONE = "invalid_phone"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_PROFILE = "unknown_profile"
    FREQUENCY_CAP = "frequency_cap"


@dataclass(frozen=True)
class AttributeFilter:
    """Profiles whose attribute ``name`` equals one of ``values``."""

    name: str
    values: tuple[str | int | float | bool, ...]


@dataclass(frozen=True)
class Audience:
    """Exactly one of: everyone, a list of profile ids, or attribute filters (all must hold)."""

    everyone: bool = False
    profile_ids: tuple[str, ...] | None = None
    filters: tuple[AttributeFilter, ...] = ()

    def document(self) -> dict[str, Any]:
        if self.profile_ids is not None:
            return {"profile_ids": list(self.profile_ids)}
        if self.filters:
            return {
                "filter": {
                    f"attributes.{f.name}": f.values[0] if len(f.values) == 1 else list(f.values)
                    for f in self.filters
                }
            }
        return {"all": True}


def parse_audience(data: object, field: str = "audience") -> Audience:
    if not isinstance(data, dict) or len(data) != 1:
        raise InvalidInput.one(
            field,
            'must be one of {"all": true}, {"profile_ids": [...]} or '
            '{"filter": {"attributes.<name>": value or [values]}}',
        )
    ((kind, value),) = data.items()
    if kind == "all":
        if value is not True:
            raise InvalidInput.one(f"{field}.all", "must be true")
        return Audience(everyone=True)
    if kind == "profile_ids":
        if not isinstance(value, list) or not value:
            raise InvalidInput.one(f"{field}.profile_ids", "must be a non-empty list of ids")
        if len(value) > MAX_PROFILE_IDS:
            raise InvalidInput.one(
                f"{field}.profile_ids",
                phrase(
                    "has %(count)s ids; the limit is %(most)s (use a filter for more)",
                    count=len(value),
                    most=MAX_PROFILE_IDS,
                ),
            )
        errors: list[FieldError] = []
        for index, item in enumerate(value):
            try:
                check_external_id(item, f"{field}.profile_ids[{index}]")
            except InvalidInput as exc:
                errors.extend(exc.errors)
        if errors:
            raise InvalidInput(errors[:20])
        return Audience(profile_ids=tuple(value))
    if kind == "filter":
        return Audience(filters=_parse_filters(value, f"{field}.filter"))
    raise InvalidInput.one(
        f"{field}.{kind}", "unknown audience kind; use all, profile_ids or filter"
    )


def _parse_filters(value: object, field: str) -> tuple[AttributeFilter, ...]:
    if not isinstance(value, dict) or not value:
        raise InvalidInput.one(field, 'must be an object such as {"attributes.country": "FR"}')
    filters: list[AttributeFilter] = []
    errors: list[FieldError] = []
    for key, wanted in value.items():
        match = _FILTER_KEY.fullmatch(key)
        if match is None:
            errors.append(
                FieldError(
                    f"{field}.{key}", "filter keys are attributes.<name> (e.g. attributes.country)"
                )
            )
            continue
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or len(values) > MAX_FILTER_VALUES:
            errors.append(
                FieldError(
                    f"{field}.{key}", phrase("give 1 to %(most)s values", most=MAX_FILTER_VALUES)
                )
            )
            continue
        if not all(isinstance(v, str | int | float | bool) for v in values):
            errors.append(
                FieldError(f"{field}.{key}", phrase("values are strings, numbers or booleans"))
            )
            continue
        filters.append(AttributeFilter(match.group(1), tuple(values)))
    if errors:
        raise InvalidInput(errors)
    return tuple(filters)


def check_throttle(value: object) -> float | None:
    """A campaign's pace in messages per second (None: not throttled); also applied to stored
    campaigns, which older versions checked less (``1e-300`` passed, then overflowed)."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not MIN_THROTTLE <= value <= MAX_THROTTLE  # refuses NaN and infinities too
    ):
        raise InvalidInput.one(
            "throttle_per_second",
            phrase(
                "must be a number of messages per second from %(least)s to %(most)s",
                least=f"{MIN_THROTTLE:g}",
                most=f"{MAX_THROTTLE:g}",
            ),
        )
    return float(value)


def check_send_at(value: object) -> datetime | None:
    """When a campaign starts (None: at launch); also applied to stored campaigns."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput.one(
            "send_at", phrase("must be a date-time with a time zone, e.g. 2026-05-01T09:00:00Z")
        )
    if value >= LATEST_SEND_AT:
        raise InvalidInput.one(
            "send_at", phrase("must be before %(year)s-01-01", year=LATEST_SEND_AT.year)
        )
    return value


@dataclass(frozen=True)
class CampaignDraft:
    name: str
    surface_id: str
    body: str
    audience: Audience
    variables: dict[str, Any]
    send_at: datetime | None
    throttle_per_second: float | None


def parse_campaign(data: Mapping[str, Any]) -> CampaignDraft:
    """A campaign from a request body, every problem reported field by field (the body's
    template is checked by the caller, which owns the personalizer)."""
    errors: list[FieldError] = []
    known = {
        "name",
        "surface_id",
        "body",
        "audience",
        "variables",
        "send_at",
        "throttle_per_second",
    }
    errors.extend(FieldError(str(k), "unknown field") for k in data if k not in known)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors.append(FieldError("name", phrase("is required (1 to 200 characters)")))
    surface_id = data.get("surface_id")
    if not isinstance(surface_id, str) or not surface_id:
        errors.append(FieldError("surface_id", phrase("is required")))
    body = data.get("body")
    if not isinstance(body, str) or not body.strip():
        errors.append(FieldError("body", phrase("must not be empty")))
    audience: Audience | None = None
    try:
        audience = parse_audience(data.get("audience"))
    except InvalidInput as exc:
        errors.extend(exc.errors)
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        errors.append(FieldError("variables", "must be a JSON object"))
    send_at: datetime | None = None
    try:
        send_at = check_send_at(data.get("send_at"))
    except InvalidInput as exc:
        errors.extend(exc.errors)
    throttle: float | None = None
    try:
        throttle = check_throttle(data.get("throttle_per_second"))
    except InvalidInput as exc:
        errors.extend(exc.errors)
    if errors or audience is None:
        raise InvalidInput(errors)
    return CampaignDraft(
        name=str(name).strip(),
        surface_id=str(surface_id),
        body=str(body),
        audience=audience,
        variables=dict(variables),
        send_at=send_at,
        throttle_per_second=throttle,
    )
