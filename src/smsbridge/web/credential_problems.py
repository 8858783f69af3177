"""The credential form's problems in a marketer's words: each one named by the field as the
form labels it (never an internal path such as ``headers[1].value``), linked to that field,
and shown again beside it.

The API's field errors are the source; only their wording for the admin changes here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_HEADER = re.compile(r"headers\[(\d+)\]\.(\w+)")

_LABELS: dict[str, tuple[str, str]] = {
    "vendor": ("SMS vendor", "vendor"),
    "name": ("Name", "name"),
    "provider_app_id": ("Provider AppId", "provider_app_id"),
    "provider_name": ("Provider name", "provider_name"),
    "provider_url": ("Provider URL", "provider_url"),
    "content_type": ("Payload format", "content_type"),
    "payload": ("Provider payload", "payload"),
    "headers": ("Header parameters", "header_label_0"),
    "response.message_id_path": ("Provider message id in the answer", "message_id_path"),
    "webhook_secret": ("Webhook signing secret", "webhook_secret"),
    "sample_body": ("Sample webhook body", "sample_body"),
    "sample_type": ("Sample format", "sample_type"),
    "auth.type": ("Authentication type", "auth_type"),
    "auth.scheme": ("Token scheme", "auth_scheme"),
    "auth.token": ("API token", "auth_token"),
    "auth.username": ("User name", "auth_username"),
    "auth.password": ("Password", "auth_password"),
    "auth.header": ("Header name of the API key", "auth_header"),
    "auth.key": ("API key", "auth_key"),
    "auth.token_url": ("Token URL", "auth_token_url"),
    "auth.client_id": ("Client id", "auth_client_id"),
    "auth.client_secret": ("Client secret", "auth_client_secret"),
    "auth.scope": ("Scope", "auth_scope"),
    "auth.client_auth": ("Client authentication", "auth_client_auth"),
    "auth.secret": ("Signing secret", "auth_secret"),
    "auth.algorithm": ("Algorithm", "auth_algorithm"),
    "auth.encoding": ("Signature encoding", "auth_encoding"),
    "auth.signature_header": ("Signature header", "auth_signature_header"),
    "auth.signature_prefix": ("Signature prefix", "auth_signature_prefix"),
    "auth.timestamp_header": ("Timestamp header", "auth_timestamp_header"),
    "auth.timestamp_format": ("Timestamp format", "auth_timestamp_format"),
    "auth.string_to_sign": ("String to sign", "auth_string_to_sign"),
    "delivery_reports.status_map": ("Status map (delivery reports)", "reports_status_map"),
}
_MAPPING_LABELS = {
    "items_path": "batched body",
    "message_id_path": "provider message id",
    "status_path": "provider status",
    "error_path": "error code",
    "from_path": "sender number",
    "to_path": "our number",
    "text_path": "message text",
    "id_path": "provider message id",
}
_HEADER_PARTS = {"label": "its label", "type": "its type", "value": "its value"}

_REWORDED = (
    (
        re.compile(r"^must use https; plain http is only accepted when .*$"),
        "must start with https:// — over plain http:// your provider's credentials would "
        "travel unencrypted",
    ),
)
"""API messages that name server settings or internals, as the admin says them."""


def in_admin_words(_field: str, message: str) -> str:
    for pattern, words in _REWORDED:
        if pattern.match(message):
            return words
    return message


def header_errors(errors: Mapping[str, str]) -> dict[int, str]:
    """The problems of each header row (0-based index → one sentence naming the row as the
    form numbers it, from 1)."""
    rows: dict[int, list[str]] = {}
    for name, message in errors.items():
        found = _HEADER.fullmatch(name)
        if found:
            part = _HEADER_PARTS.get(found.group(2), found.group(2))
            rows.setdefault(int(found.group(1)), []).append(f"{part} {message}")
    return {
        index: f"Header row {index + 1}: " + "; ".join(parts) + "." for index, parts in rows.items()
    }


@dataclass(frozen=True)
class Problem:
    label: str
    """The field as the form labels it."""
    anchor: str | None
    """The id of its input, to jump to."""
    message: str


def problem_list(errors: Mapping[str, str]) -> list[Problem]:
    """Every problem, named and linked, in the order of the form's fields."""
    order = list(_LABELS)
    ranked: list[tuple[int, Problem]] = []
    for name, message in errors.items():
        header = _HEADER.fullmatch(name)
        kind, _, leaf = name.partition(".")
        if header:
            index, part = int(header.group(1)), header.group(2)
            part = part if part in _HEADER_PARTS else "label"
            label = f"Header row {index + 1}, {part}"
            ranked.append(
                (order.index("headers"), Problem(label, f"header_{part}_{index}", message))
            )
        elif name in _LABELS:
            label, anchor = _LABELS[name]
            ranked.append((order.index(name), Problem(label, anchor, message)))
        elif kind in ("delivery_reports", "inbound") and leaf in _MAPPING_LABELS:
            what = "delivery reports" if kind == "delivery_reports" else "inbound messages"
            prefix = "reports" if kind == "delivery_reports" else "inbound"
            label = f"Webhook mappings, {what}: {_MAPPING_LABELS[leaf]}"
            ranked.append((len(order), Problem(label, f"{prefix}_{leaf}", message)))
        else:
            ranked.append(
                (len(order) + 1, Problem(name.replace("_", " ").capitalize(), None, message))
            )
    return [problem for _, problem in sorted(ranked, key=lambda item: item[0])]
