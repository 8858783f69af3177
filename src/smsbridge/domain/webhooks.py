"""Reading provider webhooks: the body (JSON or form) and the delivery reports in it.

A credential's ``delivery_reports`` mapping (from its preset, or written by hand) says where
each report keeps the provider's message id, its status and its error, and how provider
statuses translate to ours. ``items_path`` selects the reports of a batched body
(``$.results[*]``); without it the body is one report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from jsonpath_rfc9535 import JSONPathError

from smsbridge.domain.credentials import DeliveryReportMapping, InboundMapping
from smsbridge.domain.provider_answers import MISSING, compiled_path
from smsbridge.errors import MalformedWebhook

_TOO_DEEP = "the body is nested too deeply for the credential's mapping paths"
MAX_PROVIDER_ID_CHARS = 200
"""Longest provider message id kept (the column's size; ids we extract are cut there too)."""
MAX_NUMBER_CHARS = 32
"""Longest phone number, short code or sender id kept from a webhook."""


@dataclass(frozen=True)
class WebhookRequest:
    """What a webhook handler needs of the HTTP request."""

    body: bytes
    content_type: str | None
    url: str
    """The public URL the provider called (``SMSBRIDGE_PUBLIC_URL`` + path + query)."""
    headers: Mapping[str, str]
    """Lower-case names."""


def read_body(raw: bytes, content_type: str | None) -> object:
    """The webhook body as JSON data; form bodies become an object of their fields."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedWebhook("the form body is not UTF-8") from None
        return dict(parse_qsl(text, keep_blank_values=True))
    if media in ("application/json", "") or media.endswith("+json"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedWebhook(f"the body is not JSON ({exc})") from None
    raise MalformedWebhook(f"unsupported Content-Type {media!r}: send JSON or a form")


@dataclass(frozen=True)
class DeliveryReport:
    provider_message_id: str
    status: str | None
    """Ours: sent, delivered, undelivered or failed; None for a status the mapping does not
    name (kept as a message event, changing nothing)."""
    error: str | None
    provider_status: str


def _scalar(value: object) -> str | None:
    if value is None or value is MISSING or isinstance(value, dict | list):
        return None
    text = _printable(str(value)).strip()
    return text or None


def _bounded(value: str | None, limit: int) -> str | None:
    """``value`` when it fits the column it goes to; a longer one is no valid id or number."""
    return value if value is None or len(value) <= limit else None


def _printable(text: str) -> str:
    """NUL cannot be stored by PostgreSQL: kept visible as U+FFFD instead of failing."""
    return text.replace("\x00", "\ufffd")


def _items(document: object, items_path: str | None) -> list[object]:
    if not items_path:
        return [document]
    nodes = compiled_path(items_path).query.find(document)  # type: ignore[arg-type]
    values = [n.value for n in nodes]
    return values[0] if len(values) == 1 and isinstance(values[0], list) else values


@dataclass(frozen=True)
class InboundItem:
    from_number: str
    to_number: str | None
    text: str
    provider_message_id: str | None


def read_inbound(document: object, mapping: InboundMapping) -> tuple[list[InboundItem], list[str]]:
    """The inbound messages in ``document``, and a note for each item that could not be read."""
    try:
        return _read_inbound(document, mapping)
    except (JSONPathError, RecursionError):
        raise MalformedWebhook(_TOO_DEEP) from None


def _read_inbound(document: object, mapping: InboundMapping) -> tuple[list[InboundItem], list[str]]:
    if mapping.from_path is None or mapping.text_path is None:
        raise MalformedWebhook("the credential's inbound mapping lacks from_path or text_path")
    from_path = compiled_path(mapping.from_path)
    text_path = compiled_path(mapping.text_path)
    to_path = compiled_path(mapping.to_path) if mapping.to_path else None
    id_path = compiled_path(mapping.id_path) if mapping.id_path else None
    items: list[InboundItem] = []
    notes: list[str] = []
    for position, item in enumerate(_items(document, mapping.items_path)):
        sender = _scalar(from_path.first(item))
        text = text_path.first(item)
        if sender is None or not isinstance(text, str):
            notes.append(f"item {position}: no sender or text")
            continue
        # An over-long recipient or id is dropped, not the message: a STOP must still act.
        items.append(
            InboundItem(
                sender,
                _bounded(_scalar(to_path.first(item)), MAX_NUMBER_CHARS) if to_path else None,
                _printable(text),
                _bounded(_scalar(id_path.first(item)), MAX_PROVIDER_ID_CHARS) if id_path else None,
            )
        )
    return items, notes


def read_reports(
    document: object, mapping: DeliveryReportMapping
) -> tuple[list[DeliveryReport], list[str]]:
    """The reports in ``document``, and a note for each item that could not be read.

    A status the mapping does not name still makes a report, with ``status`` None: a provider's
    new status is recorded as a message event, never silently dropped."""
    try:
        return _read_reports(document, mapping)
    except (JSONPathError, RecursionError):
        raise MalformedWebhook(_TOO_DEEP) from None


def _read_reports(
    document: object, mapping: DeliveryReportMapping
) -> tuple[list[DeliveryReport], list[str]]:
    if mapping.message_id_path is None or mapping.status_path is None:
        raise MalformedWebhook("the credential's delivery_reports mapping lacks paths")
    items = _items(document, mapping.items_path)
    lowered = {k.lower(): v for k, v in mapping.status_map.items()}
    id_path = compiled_path(mapping.message_id_path)
    status_path = compiled_path(mapping.status_path)
    error_path = compiled_path(mapping.error_path) if mapping.error_path else None
    reports: list[DeliveryReport] = []
    notes: list[str] = []
    for position, item in enumerate(items):
        provider_id = _scalar(id_path.first(item))
        raw_status = _scalar(status_path.first(item))
        if provider_id is None or raw_status is None:
            notes.append(f"item {position}: no message id or status")
            continue
        if len(provider_id) > MAX_PROVIDER_ID_CHARS:
            notes.append(f"item {position}: message id over {MAX_PROVIDER_ID_CHARS} characters")
            continue
        ours = mapping.status_map.get(raw_status) or lowered.get(raw_status.lower())
        error = _scalar(error_path.first(item)) if error_path else None
        if error in ("0", "000"):  # providers' "no error" codes
            error = None
        reports.append(DeliveryReport(provider_id, ours, error, raw_status))
    return reports, notes
