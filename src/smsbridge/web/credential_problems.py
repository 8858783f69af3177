"""The credential form's problems in a marketer's words: each one named by the field as the
form labels it (never an internal path such as ``headers[1].value``), linked to that field,
and shown again beside it.

The API's field errors are the source; only their wording for the admin changes here, in the
request's language (the functions take its translator, English when none is given). The API's
own messages are shown in that language too when they are phrases (``errors.phrase``); what
they quote from other libraries (a JSONPath parser's complaint) stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from smsbridge.web.i18n import N_, Translator, translator_for

ENGLISH = translator_for("en")

_HEADER = re.compile(r"headers\[(\d+)\]\.(\w+)")

_LABELS: dict[str, tuple[str, str]] = {
    "vendor": (N_("SMS vendor"), "vendor"),
    "name": (N_("Name"), "name"),
    "provider_app_id": (N_("Provider AppId"), "provider_app_id"),
    "provider_name": (N_("Provider name"), "provider_name"),
    "provider_url": (N_("Provider URL"), "provider_url"),
    "content_type": (N_("Payload format"), "content_type"),
    "payload": (N_("Provider payload"), "payload"),
    "headers": (N_("Header parameters"), "header_label_0"),
    "response.message_id_path": (N_("Provider message id in the answer"), "message_id_path"),
    "webhook_secret": (N_("Webhook signing secret"), "webhook_secret"),
    "sample_body": (N_("Sample webhook body"), "sample_body"),
    "sample_type": (N_("Sample format"), "sample_type"),
    "auth.type": (N_("Authentication type"), "auth_type"),
    "auth.scheme": (N_("Token scheme"), "auth_scheme"),
    "auth.token": (N_("API token"), "auth_token"),
    "auth.username": (N_("User name"), "auth_username"),
    "auth.password": (N_("Password"), "auth_password"),
    "auth.header": (N_("Header name of the API key"), "auth_header"),
    "auth.key": (N_("API key"), "auth_key"),
    "auth.token_url": (N_("Token URL"), "auth_token_url"),
    "auth.client_id": (N_("Client id"), "auth_client_id"),
    "auth.client_secret": (N_("Client secret"), "auth_client_secret"),
    "auth.scope": (N_("Scope"), "auth_scope"),
    "auth.client_auth": (N_("Client authentication"), "auth_client_auth"),
    "auth.secret": (N_("Signing secret"), "auth_secret"),
    "auth.algorithm": (N_("Algorithm"), "auth_algorithm"),
    "auth.encoding": (N_("Signature encoding"), "auth_encoding"),
    "auth.signature_header": (N_("Signature header"), "auth_signature_header"),
    "auth.signature_prefix": (N_("Signature prefix"), "auth_signature_prefix"),
    "auth.timestamp_header": (N_("Timestamp header"), "auth_timestamp_header"),
    "auth.timestamp_format": (N_("Timestamp format"), "auth_timestamp_format"),
    "auth.string_to_sign": (N_("String to sign"), "auth_string_to_sign"),
    "delivery_reports.status_map": (N_("Status map (delivery reports)"), "reports_status_map"),
}
_MAPPING_LABELS = {
    "items_path": N_("batched body"),
    "message_id_path": N_("provider message id"),
    "status_path": N_("provider status"),
    "error_path": N_("error code"),
    "from_path": N_("sender number"),
    "to_path": N_("our number"),
    "text_path": N_("message text"),
    "id_path": N_("provider message id"),
}
_HEADER_PARTS = {"label": N_("its label"), "type": N_("its type"), "value": N_("its value")}
_ROW_PARTS = {"label": N_("label"), "type": N_("type"), "value": N_("value")}
"""A header row's parts, as the problem list names them."""

_REWORDED = (
    (
        re.compile(r"^must use https; plain http is only accepted when .*$"),
        N_(
            "must start with https:// — over plain http:// your provider's credentials would "
            "travel unencrypted"
        ),
    ),
)
"""API messages that name server settings or internals, as the admin says them."""


def in_admin_words(_field: str, message: str, _: Translator = ENGLISH) -> str:
    """``message`` as the admin says it, in ``_``'s language."""
    for pattern, words in _REWORDED:
        if pattern.match(message):
            return _(words)
    return str(_.said(message))


def header_errors(errors: Mapping[str, str], _: Translator = ENGLISH) -> dict[int, str]:
    """The problems of each header row (0-based index → one sentence naming the row as the
    form numbers it, from 1)."""
    rows: dict[int, list[str]] = {}
    for name, message in errors.items():
        found = _HEADER.fullmatch(name)
        if found:
            part = found.group(2)
            part = _(_HEADER_PARTS[part]) if part in _HEADER_PARTS else part
            rows.setdefault(int(found.group(1)), []).append(f"{part} {message}")
    return {
        index: _("Header row %(n)s: %(problems)s.", n=index + 1, problems="; ".join(parts))
        for index, parts in rows.items()
    }


@dataclass(frozen=True)
class Problem:
    label: str
    """The field as the form labels it."""
    anchor: str | None
    """The id of its input, to jump to."""
    message: str


def problem_list(errors: Mapping[str, str], _: Translator = ENGLISH) -> list[Problem]:
    """Every problem, named and linked, in the order of the form's fields."""
    order = list(_LABELS)
    ranked: list[tuple[int, Problem]] = []
    for name, message in errors.items():
        header = _HEADER.fullmatch(name)
        kind, _dot, leaf = name.partition(".")
        if header:
            index, part = int(header.group(1)), header.group(2)
            part = part if part in _HEADER_PARTS else "label"
            label = _("Header row %(n)s, %(part)s", n=index + 1, part=_(_ROW_PARTS[part]))
            ranked.append(
                (order.index("headers"), Problem(label, f"header_{part}_{index}", message))
            )
        elif name in _LABELS:
            label, anchor = _LABELS[name]
            ranked.append((order.index(name), Problem(_(label), anchor, message)))
        elif kind in ("delivery_reports", "inbound") and leaf in _MAPPING_LABELS:
            what = _("delivery reports") if kind == "delivery_reports" else _("inbound messages")
            prefix = "reports" if kind == "delivery_reports" else "inbound"
            label = _(
                "Webhook mappings, %(kind)s: %(field)s", kind=what, field=_(_MAPPING_LABELS[leaf])
            )
            ranked.append((len(order), Problem(label, f"{prefix}_{leaf}", message)))
        else:
            ranked.append(
                (len(order) + 1, Problem(name.replace("_", " ").capitalize(), None, message))
            )
    return [problem for _rank, problem in sorted(ranked, key=lambda item: item[0])]
