"""Surfaces: channel configurations tying a sender to a credential and its options.

Link tracking, keywords/replies and fallbacks are stored and validated here; what they do
comes with link tracking, consent and failover.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from smsbridge.domain.pacing import (
    FrequencyCap,
    QuietHours,
    parse_frequency_cap,
    parse_quiet_hours,
)
from smsbridge.errors import FieldError, InvalidInput, phrase

MAX_NAME = 100
"""Like credential names: 1 to 100 characters once trimmed, spaces allowed."""
_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 ]{1,11}")
_SHORT_CODE = re.compile(r"[0-9]{3,8}")

DEFAULT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "opt_out": ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
    "opt_in": ("START", "YES", "UNSTOP", "SUBSCRIBE"),
    "help": ("HELP", "INFO"),
}
DEFAULT_REPLIES: dict[str, str] = {
    "opt_out": "You are unsubscribed and will get no more messages. Reply START to resubscribe.",
    "opt_in": "You are subscribed again. Reply STOP to unsubscribe.",
    "help": "Reply STOP to unsubscribe, START to resubscribe.",
    "confirm_opt_in": "Reply YES to confirm you want our messages again.",
}
MAX_REPLY = 1600


class MessageType(StrEnum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


MAX_LINK_DAYS = 3650


@dataclass(frozen=True)
class LinkTracking:
    enabled: bool = False
    base_url: str | None = None
    expire_after_days: int | None = None
    """Short links stop redirecting (404) this many days after the message; None: never."""


@dataclass(frozen=True)
class Surface:
    name: str
    credential_id: str
    sender: str
    message_type: MessageType
    fallback_credential_ids: tuple[str, ...] = ()
    link_tracking: LinkTracking = LinkTracking()
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_KEYWORDS))
    replies: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_REPLIES))
    double_opt_in: bool = False
    """An opt-in becomes active only once the number answers YES to a confirmation."""
    quiet_hours: QuietHours | None = None
    """Marketing messages wait for the end of this local-time window (see domain.pacing)."""
    frequency_cap: FrequencyCap | None = None
    """At most so many marketing messages per recipient in a rolling window."""

    @property
    def paces(self) -> bool:
        """Whether quiet hours or a frequency cap apply to this surface's messages."""
        marketing = self.message_type is MessageType.MARKETING
        return marketing and (self.quiet_hours is not None or self.frequency_cap is not None)

    def link_base(self, public_url: str) -> str | None:
        """Where this surface's short links point, or None when it does not track links."""
        if not self.link_tracking.enabled:
            return None
        return self.link_tracking.base_url or public_url

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "credential_id": self.credential_id,
            "fallback_credential_ids": list(self.fallback_credential_ids),
            "sender": self.sender,
            "message_type": self.message_type.value,
            "link_tracking": {
                "enabled": self.link_tracking.enabled,
                "base_url": self.link_tracking.base_url,
                "expire_after_days": self.link_tracking.expire_after_days,
            },
            "keywords": {k: list(v) for k, v in self.keywords.items()},
            "replies": dict(self.replies),
            "double_opt_in": self.double_opt_in,
            "quiet_hours": self.quiet_hours.document() if self.quiet_hours else None,
            "frequency_cap": self.frequency_cap.document() if self.frequency_cap else None,
        }


def check_sender(sender: str) -> str | None:
    """Why ``sender`` is not an E.164 number, a short code or an alphanumeric id, or None."""
    if sender.startswith("+"):
        try:
            number = phonenumbers.parse(sender, None)
        except phonenumbers.NumberParseException:
            return phrase("not a valid E.164 number")
        if not phonenumbers.is_possible_number(number):
            return phrase("not a possible phone number")
        if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != sender:
            return phrase("write the number in E.164 form, e.g. +15550001111")
        return None
    if _SHORT_CODE.fullmatch(sender):
        return None
    if _ALPHANUMERIC_SENDER.fullmatch(sender) and any(ch.isalpha() for ch in sender):
        return None
    return phrase(
        "must be an E.164 number (+15550001111), a short code (3-8 digits) or an "
        "alphanumeric sender id (1-11 letters, digits or spaces)"
    )


def parse_surface(doc: Mapping[str, Any]) -> Surface:
    """Validate a surface document; raise :class:`InvalidInput` naming every bad field."""
    errors: list[FieldError] = []
    name = doc.get("name")
    if isinstance(name, str) and name.isprintable():
        name = name.strip()  # kept as typed, trimmed (compared as domain.names.name_key)
    if not isinstance(name, str) or not name.isprintable() or not 0 < len(name) <= MAX_NAME:
        errors.append(
            FieldError(
                "name",
                phrase(
                    "must be 1 to %(most)s characters: letters, digits, spaces and "
                    "punctuation, on one line",
                    most=MAX_NAME,
                ),
            )
        )
    credential_id = doc.get("credential_id")
    if not isinstance(credential_id, str) or not credential_id:
        errors.append(FieldError("credential_id", phrase("is required")))
    fallbacks_raw = doc.get("fallback_credential_ids") or []
    fallbacks: list[str] = []
    if not isinstance(fallbacks_raw, list) or not all(isinstance(x, str) for x in fallbacks_raw):
        errors.append(
            FieldError("fallback_credential_ids", phrase("must be a list of credential ids"))
        )
    else:
        fallbacks = list(fallbacks_raw)
        if len(set(fallbacks)) != len(fallbacks):
            errors.append(FieldError("fallback_credential_ids", phrase("lists a credential twice")))
        if credential_id in fallbacks:
            errors.append(
                FieldError(
                    "fallback_credential_ids", phrase("must not repeat the primary credential")
                )
            )
    sender = doc.get("sender")
    if not isinstance(sender, str) or not sender.strip():
        errors.append(FieldError("sender", phrase("is required")))
        sender = ""
    elif (problem := check_sender(sender.strip())) is not None:
        errors.append(FieldError("sender", problem))
    try:
        message_type = MessageType(doc.get("message_type", MessageType.TRANSACTIONAL.value))
    except ValueError:
        errors.append(FieldError("message_type", phrase("must be marketing or transactional")))
        message_type = MessageType.TRANSACTIONAL
    link_tracking = _parse_link_tracking(doc.get("link_tracking"), errors)
    keywords = _parse_keywords(doc.get("keywords"), errors)
    replies = _parse_replies(doc.get("replies"), errors)
    double_opt_in = doc.get("double_opt_in", False)
    if not isinstance(double_opt_in, bool):
        errors.append(FieldError("double_opt_in", phrase("must be true or false")))
        double_opt_in = False
    quiet_hours = parse_quiet_hours(doc.get("quiet_hours"), errors)
    frequency_cap = parse_frequency_cap(doc.get("frequency_cap"), errors)
    if errors:
        raise InvalidInput(errors)
    assert isinstance(name, str)
    assert isinstance(credential_id, str)
    return Surface(
        name=name,
        credential_id=credential_id,
        sender=sender.strip(),
        message_type=message_type,
        fallback_credential_ids=tuple(fallbacks),
        link_tracking=link_tracking,
        keywords=keywords,
        replies=replies,
        double_opt_in=double_opt_in,
        quiet_hours=quiet_hours,
        frequency_cap=frequency_cap,
    )


def _parse_link_tracking(raw: object, errors: list[FieldError]) -> LinkTracking:
    if raw is None:
        return LinkTracking()
    if not isinstance(raw, Mapping):
        errors.append(FieldError("link_tracking", phrase("must be an object")))
        return LinkTracking()
    enabled = raw.get("enabled", False)
    if not isinstance(enabled, bool):
        errors.append(FieldError("link_tracking.enabled", phrase("must be true or false")))
        enabled = False
    base_url = raw.get("base_url")
    if base_url is not None:
        try:
            parts = urlsplit(base_url) if isinstance(base_url, str) else None
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or "?" in base_url
            or "#" in base_url
        ):
            errors.append(
                FieldError("link_tracking.base_url", phrase("must be an absolute http(s) URL"))
            )
            base_url = None
        else:
            base_url = base_url.rstrip("/")
    days = raw.get("expire_after_days")
    if days is not None and (
        not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_LINK_DAYS
    ):
        errors.append(
            FieldError(
                "link_tracking.expire_after_days",
                phrase(
                    "must be a whole number of days from 1 to %(most)s, or null (never)",
                    most=MAX_LINK_DAYS,
                ),
            )
        )
        days = None
    return LinkTracking(enabled, base_url, days)


def _parse_keywords(raw: object, errors: list[FieldError]) -> dict[str, tuple[str, ...]]:
    keywords = dict(DEFAULT_KEYWORDS)
    if raw is None:
        return keywords
    if not isinstance(raw, Mapping):
        errors.append(FieldError("keywords", phrase("must be an object of keyword lists")))
        return keywords
    given: set[str] = set()
    for category, words in raw.items():
        path = f"keywords.{category}"
        if category not in DEFAULT_KEYWORDS:
            errors.append(FieldError(path, phrase("unknown category; use opt_out, opt_in or help")))
            continue
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            errors.append(FieldError(path, phrase("must be a list of non-empty words")))
            continue
        keywords[category] = tuple(dict.fromkeys(w.strip().upper() for w in words))
        given.add(category)
    # A word may mean one thing only, defaults included (opt_in ["STOP"] with the default
    # opt_out list would be ambiguous): report it on the category the request gave.
    owner: dict[str, str] = {}
    for category in sorted(keywords, key=lambda c: c not in given):
        for word in keywords[category]:
            if word in owner and owner[word] != category:
                blamed = category if category in given else owner[word]
                other = owner[word] if blamed == category else category
                errors.append(
                    FieldError(
                        f"keywords.{blamed}",
                        phrase("%(word)s is also in %(other)s", word=word, other=other),
                    )
                )
            owner.setdefault(word, category)
    return keywords


def _parse_replies(raw: object, errors: list[FieldError]) -> dict[str, str]:
    replies = dict(DEFAULT_REPLIES)
    if raw is None:
        return replies
    if not isinstance(raw, Mapping):
        errors.append(FieldError("replies", phrase("must be an object")))
        return replies
    for category, text in raw.items():
        path = f"replies.{category}"
        if category not in DEFAULT_REPLIES:
            errors.append(
                FieldError(
                    path, phrase("unknown category; use opt_out, opt_in, help or confirm_opt_in")
                )
            )
        elif not isinstance(text, str) or len(text) > MAX_REPLY:
            errors.append(
                FieldError(
                    path, phrase("must be text of at most %(most)s characters", most=MAX_REPLY)
                )
            )
        else:
            replies[category] = text
    return replies
