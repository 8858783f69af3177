"""Reading provider webhooks: the body (JSON or form) and the delivery reports in it.

A credential's ``delivery_reports`` mapping (from its preset, or written by hand) says where
each report keeps the provider's message id, its status and its error, and how provider
statuses translate to ours. ``items_path`` selects the reports of a batched body
(``$.results[*]``); without it the body is one report.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson

from smsbridge.domain.credentials import DeliveryReportMapping
from smsbridge.domain.responses import MISSING, compiled_path
from smsbridge.errors import MalformedWebhook

MAX_WEBHOOK_BYTES = 1024 * 1024


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
    status: str
    """Ours: sent, delivered, undelivered or failed."""
    error: str | None
    provider_status: str


def _scalar(value: object) -> str | None:
    if value is None or value is MISSING or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def read_reports(
    document: object, mapping: DeliveryReportMapping
) -> tuple[list[DeliveryReport], list[str]]:
    """The reports in ``document``, and a note for each item that could not be read."""
    if mapping.message_id_path is None or mapping.status_path is None:
        raise MalformedWebhook("the credential's delivery_reports mapping lacks paths")
    items: list[object]
    if mapping.items_path:
        nodes = compiled_path(mapping.items_path).query.find(document)  # type: ignore[arg-type]
        values = [n.value for n in nodes]
        items = values[0] if len(values) == 1 and isinstance(values[0], list) else values
    else:
        items = [document]
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
        ours = mapping.status_map.get(raw_status) or lowered.get(raw_status.lower())
        if ours is None:
            notes.append(f"item {position}: unmapped status {raw_status!r}")
            continue
        error = _scalar(error_path.first(item)) if error_path else None
        if error in ("0", "000"):  # providers' "no error" codes
            error = None
        reports.append(DeliveryReport(provider_id, ours, error, raw_status))
    return reports, notes
