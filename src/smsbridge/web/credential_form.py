"""The API-credential form: what it shows (plain values; stored secrets only as hints), the
credential document read from a posted one, and the request a document would make (previewed
with secrets masked). What it says itself (hints, its own problems) is in the language of the
translator given, English when none is."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from starlette.datastructures import FormData

from smsbridge.domain.credential_parser import parse_credential
from smsbridge.domain.credentials import SECRET_AUTH_FIELDS, AuthType
from smsbridge.domain.payload import MAX_PAYLOAD_DEPTH
from smsbridge.domain.request import MessageValues, build_request
from smsbridge.providers.presets import apply_preset
from smsbridge.services.secretbox import SecretBox
from smsbridge.web.credential_mappings import MappingForm
from smsbridge.web.i18n import N_, Translator, translator_for

ENGLISH = translator_for("en")

SECRET_PLACEHOLDER = "********"  # noqa: S105 - a mask, not a password
KEPT_SECONDS = 3600
"""How long a secret typed into the form is carried across its round trips."""


class SecretKeeper:
    """Secrets typed into the credential form, carried across its round trips (a preview, a
    refused save, an added header row) so that nobody types them twice, without the page ever
    holding them: each is sent back as a hidden field sealed with a key derived from the
    server's secret key for this one purpose (Fernet: encrypted and authenticated), bound to
    its field's name and good for :data:`KEPT_SECONDS`. A stored secret is never sealed into
    the page: it stays in the database, shown as a hint."""

    def __init__(self, box: SecretBox) -> None:
        key = box.derive("admin credential form: typed secrets")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, field_name: str, value: str) -> str:
        return self._fernet.encrypt(orjson.dumps([field_name, value])).decode("ascii")

    def open(self, field_name: str, token: str) -> str:
        """The secret sealed in ``token`` for ``field_name``; "" when it is not one (forged,
        expired, sealed by another server key, or for another field)."""
        if not token:
            return ""
        try:
            sealed = orjson.loads(self._fernet.decrypt(token.encode("ascii"), ttl=KEPT_SECONDS))
        except (InvalidToken, ValueError, UnicodeEncodeError):
            return ""
        if not (isinstance(sealed, list) and len(sealed) == 2 and sealed[0] == field_name):
            return ""
        return str(sealed[1])


@dataclass
class HeaderRow:
    label: str = ""
    type: str = "static"
    value: str = ""
    hint: str = ""


BEARER_APP = "bearer_app"
"""The form's own choice for ``bearer`` with the ``App`` scheme (``Authorization: App <key>``,
Infobip's), which the brief names first, with Basic."""

AUTH_CHOICES: tuple[tuple[str, str], ...] = (
    (BEARER_APP, N_("Bearer App (Authorization: App <token>)")),
    ("basic", N_("Basic (user name and password)")),
    ("bearer", N_("Bearer token (Authorization: Bearer <token>)")),
    ("api_key", N_("API key in a header")),
    ("oauth2_client_credentials", N_("OAuth2 client credentials")),
    ("hmac", N_("HMAC request signing")),
    ("none", N_("None")),
)
"""The authentication types the form offers, in the order it offers them (labels translated
where shown: :func:`auth_choices`)."""


def auth_choices(_: Translator = ENGLISH) -> list[tuple[str, str]]:
    """:data:`AUTH_CHOICES` with their labels in ``_``'s language."""
    return [(kind, _(label)) for kind, label in AUTH_CHOICES]


AUTH_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "oauth2_client_credentials": ("token_url", "client_id", "scope", "client_auth"),
    "hmac": (
        "algorithm",
        "encoding",
        "signature_header",
        "signature_prefix",
        "timestamp_header",
        "timestamp_format",
        "string_to_sign",
    ),
}
"""Non-secret settings of the auth types that have more than one or two."""


@dataclass
class CredentialForm:
    """What the form shows: plain values; secrets never (only hints)."""

    preset: str = ""
    name: str = ""
    provider_app_id: str = ""
    provider_name: str = ""
    provider_url: str = ""
    auth_type: str = BEARER_APP
    auth_scheme: str = ""
    auth_username: str = ""
    auth_header: str = ""
    auth_fields: dict[str, str] = field(default_factory=dict)
    """The other non-secret settings of the OAuth2 and HMAC types, by name."""
    content_type: str = "application/json"
    payload: str = ""
    message_id_path: str = ""
    headers: list[HeaderRow] = field(default_factory=list)
    hints: dict[str, str] = field(default_factory=dict)
    mappings: MappingForm = field(default_factory=MappingForm)
    kept: dict[str, str] = field(default_factory=dict)
    """Typed secrets carried to the next submit, sealed (:class:`SecretKeeper`), by field."""

    @classmethod
    def of_document(cls, document: dict[str, Any], _: Translator = ENGLISH) -> CredentialForm:
        auth = document.get("auth") or {}
        hints = {
            f"auth.{name}": _set_hint(value, _)
            for name, value in auth.items()
            if isinstance(value, dict) and value.get("set")
        }
        webhook_secret = document.get("webhook_secret")
        if isinstance(webhook_secret, dict) and webhook_secret.get("set"):
            hints["webhook_secret"] = _set_hint(webhook_secret, _)
        headers = []
        for header in document.get("headers") or []:
            value = header.get("value")
            if isinstance(value, dict):
                headers.append(HeaderRow(header["label"], "secret", "", _set_hint(value, _)))
            else:
                headers.append(
                    HeaderRow(header["label"], header.get("type", "static"), str(value or ""))
                )
        payload = document.get("payload", "")
        return cls(
            preset=str(document.get("preset") or ""),
            name=str(document.get("name") or ""),
            provider_app_id=str(document.get("provider_app_id") or ""),
            provider_name=str(document.get("provider_name") or ""),
            provider_url=str(document.get("provider_url") or ""),
            auth_type=_choice_of(auth),
            auth_scheme=str(auth.get("scheme") or "") if _choice_of(auth) == "bearer" else "",
            auth_username=str(auth.get("username") or ""),
            auth_header=str(auth.get("header") or ""),
            auth_fields={
                name: str(auth.get(name) or "")
                for names in AUTH_TEXT_FIELDS.values()
                for name in names
                if isinstance(auth.get(name), str)
            },
            content_type=str(document.get("content_type") or "application/json"),
            payload=payload
            if isinstance(payload, str)
            else json.dumps(payload, indent=2, ensure_ascii=False),
            message_id_path=str((document.get("response") or {}).get("message_id_path") or ""),
            headers=headers,
            hints=hints,
            mappings=MappingForm.of_document(document),
        )


def _choice_of(auth: dict[str, Any]) -> str:
    """The form's authentication choice for a stored ``auth`` object."""
    kind = str(auth.get("type") or "none")
    if kind == "bearer" and str(auth.get("scheme") or "") == "App":
        return BEARER_APP
    return kind


def _set_hint(value: dict[str, Any], _: Translator) -> str:
    """What the form says of a stored secret: set, and its last characters when long enough
    to show any."""
    last4 = str(value.get("last4") or "")
    return _("set (…%(last4)s)", last4=last4) if last4 else _("set")


def read_form(
    form: FormData, keeper: SecretKeeper, _: Translator = ENGLISH
) -> tuple[CredentialForm, dict[str, Any], dict[str, str]]:
    """(what to show again, the credential document, early errors) from a posted form.

    A secret input left empty takes the secret typed into it on an earlier submit of this
    form, if any (sealed, see :class:`SecretKeeper`); otherwise it is left out of the
    document, so an edit keeps the stored value.
    """
    text = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    shown = CredentialForm(
        preset=text.get("preset", ""),
        name=text.get("name", ""),
        provider_app_id=text.get("provider_app_id", ""),
        provider_name=text.get("provider_name", ""),
        provider_url=text.get("provider_url", ""),
        auth_type=text.get("auth_type", "none"),
        auth_scheme=text.get("auth_scheme", ""),
        auth_username=text.get("auth_username", ""),
        auth_header=text.get("auth_header", ""),
        auth_fields={
            name: text.get(f"auth_{name}", "").replace("\r\n", "\n")
            for names in AUTH_TEXT_FIELDS.values()
            for name in names
        },
        content_type=text.get("content_type", "application/json"),
        payload=str(form.get("payload") or ""),
        message_id_path=text.get("message_id_path", ""),
        mappings=MappingForm.of_form(text),
    )

    def secret(name: str) -> str:
        """The secret typed into input ``name`` now or on an earlier submit; kept sealed for
        the next one."""
        value = text.get(name, "") or keeper.open(name, text.get(f"kept_{name}", ""))
        if value:
            shown.kept[name] = keeper.seal(name, value)
        return value

    mapping_part, errors = shown.mappings.document_part(_)
    document: dict[str, Any] = {
        "vendor": "custom",
        "name": shown.name,
        "provider_app_id": shown.provider_app_id,
        "provider_name": shown.provider_name,
        "provider_url": shown.provider_url,
        "content_type": shown.content_type,
    }
    payload_text = shown.payload.strip()
    try:
        document["payload"] = json.loads(payload_text) if payload_text else None
    except json.JSONDecodeError as exc:
        errors["payload"] = _(
            "not valid JSON: %(problem)s (line %(line)s, column %(column)s)",
            problem=exc.msg,
            line=exc.lineno,
            column=exc.colno,
        )
    except RecursionError:  # a document nested thousands deep: the domain's limit says how deep
        errors["payload"] = _("nested more than %(depth)s levels deep", depth=MAX_PAYLOAD_DEPTH)
    auth: dict[str, Any] = {"type": shown.auth_type}
    if shown.auth_type == BEARER_APP:
        auth = {"type": "bearer", "scheme": "App"}
        if token := secret("auth_token"):
            auth["token"] = token
    elif shown.auth_type == "bearer":
        if shown.auth_scheme:
            auth["scheme"] = shown.auth_scheme
        if token := secret("auth_token"):
            auth["token"] = token
    elif shown.auth_type == "basic":
        auth["username"] = shown.auth_username
        if password := secret("auth_password"):
            auth["password"] = password
    elif shown.auth_type == "api_key":
        auth["header"] = shown.auth_header
        if key := secret("auth_key"):
            auth["key"] = key
    elif shown.auth_type in AUTH_TEXT_FIELDS:
        for name in AUTH_TEXT_FIELDS[shown.auth_type]:
            if shown.auth_fields.get(name):
                auth[name] = shown.auth_fields[name]
        for name in SECRET_AUTH_FIELDS[AuthType(shown.auth_type)]:
            if value := secret(f"auth_{name}"):
                auth[name] = value
    document["auth"] = auth
    headers = []
    for index in range(_header_rows(text)):
        label = text.get(f"header_label_{index}", "")
        kind = text.get(f"header_type_{index}", "static")
        if kind == "secret":
            value = secret(f"header_value_{index}")
        else:
            value = text.get(f"header_value_{index}", "")
        shown.headers.append(HeaderRow(label, kind, "" if kind == "secret" else value))
        if label:
            header: dict[str, Any] = {"label": label, "type": kind}
            if value or kind == "static":
                header["value"] = value
            headers.append(header)
    document["headers"] = headers
    if webhook_secret := secret("webhook_secret"):  # left empty: the stored one is kept
        document["webhook_secret"] = webhook_secret
    if shown.message_id_path:
        document["response"] = {"message_id_path": shown.message_id_path}
    # Mappings left empty are left out: on creation a preset's apply (an edit clears them).
    document.update((k, v) for k, v in mapping_part.items() if v is not None)
    if shown.preset:
        document["preset"] = shown.preset
    return shown, document, errors


def _header_rows(text: dict[str, str]) -> int:
    """How many header rows the form posted (at most 50): its ``header_rows`` field, or when
    that is missing or not a number, the rows actually present."""
    try:
        rows = int(text.get("header_rows", ""))
    except ValueError:
        rows = 0
        while rows < 50 and f"header_label_{rows}" in text:
            rows += 1
    return max(0, min(rows, 50))


def preview_request(document: dict[str, Any], allow_private: bool) -> Any:
    """The request the form would make, secrets masked (missing secrets stand masked too)."""
    candidate = apply_preset(document)
    auth = dict(candidate.get("auth") or {})
    try:
        secret_names = SECRET_AUTH_FIELDS[AuthType(str(auth.get("type")))]
    except ValueError:
        secret_names = ()
    for name in secret_names:
        if name not in auth:
            auth[name] = SECRET_PLACEHOLDER
    candidate["auth"] = auth
    candidate["headers"] = [
        h if "value" in h else {**h, "value": SECRET_PLACEHOLDER}
        for h in candidate.get("headers") or []
    ]
    credential = parse_credential(candidate, allow_private_urls=allow_private)
    values = MessageValues("+33612345678", "+15550001111", "Hello from smsbridge", "msg_preview")
    request = build_request(credential, values, masked=True)
    return {
        "method": request.method,
        "url": request.url,
        "headers": dict(request.headers),
        "body": request.body.decode("utf-8", errors="replace"),
    }
