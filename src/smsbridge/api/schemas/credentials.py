"""Credential documents in and out: auth (built from the domain's auth types and their
fields), headers, mappings, presets, preview and test."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, create_model

from smsbridge.api.schemas.base import JsonObject, Strict, one_of
from smsbridge.domain.credentials import (
    AUTH_CHOICES,
    AUTH_FIELDS,
    METHODS,
    SECRET_AUTH_FIELDS,
    VENDORS,
    WEBHOOK_SCHEMES,
    AuthType,
    HeaderType,
)
from smsbridge.domain.payload import ContentType
from smsbridge.providers.presets import PRESETS

if TYPE_CHECKING:  # a runtime Literal is no static type
    Vendor: TypeAlias = str
    Method: TypeAlias = str
    WebhookScheme: TypeAlias = str
    PresetName: TypeAlias = str
else:
    Vendor = one_of(VENDORS)
    Method = one_of(METHODS)
    WebhookScheme = one_of(WEBHOOK_SCHEMES)
    PresetName = one_of(PRESETS)


class SecretHint(BaseModel):
    """Where a secret sits: it is set, and these are its last four characters."""

    set: bool
    last4: str


SecretIn = str | SecretHint | None


_AUTH_HELP = {
    "scheme": "the scheme word, default Bearer",
    "token": "the token",
    "username": "the user name",
    "password": "the password",
    "header": "the header carrying the key",
    "key": "the key",
    "token_url": "the token endpoint (https)",
    "client_id": "the client id",
    "client_secret": "the client secret",
    "scope": "the scope to ask for (optional)",
    "client_auth": "how the client authenticates to token_url: HTTP Basic or in the form body",
    "secret": "the signing key",
    "algorithm": "the HMAC hash",
    "signature_header": "the header carrying the signature, default X-Signature",
    "timestamp_header": "the header carrying the timestamp, default X-Timestamp",
    "string_to_sign": "what is signed, with {method}, {path}, {timestamp} and {body} filled in",
    "encoding": "how the signature is written",
    "signature_prefix": "written before the signature, e.g. sha256=",
    "timestamp_format": "Unix seconds or milliseconds",
}
"""What each auth field means, for the OpenAPI document (a field without help still exists)."""


def auth_model(name: str, *, secret: Any, base: type[BaseModel]) -> type[BaseModel]:
    """The model of a credential's ``auth`` object, built from the domain's one list of auth
    types and their fields (``AUTH_FIELDS``, ``SECRET_AUTH_FIELDS``, ``AUTH_CHOICES``), so that
    the API accepts and shows exactly what the domain knows. ``secret``: the type of secret
    fields (a value or a hint going in, a hint coming out)."""
    fields: dict[str, Any] = {"type": (AuthType | None, None)}
    for auth_type, names in AUTH_FIELDS.items():
        for field_name in names:
            is_secret = field_name in SECRET_AUTH_FIELDS[auth_type]
            choices = AUTH_CHOICES.get(field_name)
            kind: Any = secret if is_secret else Literal.__getitem__(choices) if choices else str
            users = ", ".join(t.value for t, n in AUTH_FIELDS.items() if field_name in n)
            help_text = f"{users}: {_AUTH_HELP.get(field_name, field_name)}"
            fields[field_name] = (
                kind | None,
                Field(None, description=help_text + (" (secret)" if is_secret else "")),
            )
    return create_model(name, __base__=base, **fields)


class AuthIn(auth_model("AuthInFields", secret=SecretIn, base=Strict)):  # type: ignore[misc]
    """How requests authenticate: ``type`` and the fields of that type."""


class HeaderIn(Strict):
    label: str
    type: HeaderType = HeaderType.STATIC
    value: SecretIn = None


class ResponseMapping(Strict):
    message_id_path: str | None = Field(None, examples=["$.messages[0].messageId"])
    success_path: str | None = Field(
        None, description="for providers that answer 2xx to refusals: where the verdict is"
    )
    success_values: list[str] | None = Field(
        None, description="values at success_path that mean accepted, e.g. ['0']"
    )


class InboundMappingIO(Strict):
    items_path: str | None = None
    from_path: str | None = None
    to_path: str | None = None
    text_path: str | None = None
    id_path: str | None = None


class DeliveryReportMappingIO(Strict):
    items_path: str | None = None
    message_id_path: str | None = None
    status_path: str | None = None
    error_path: str | None = None
    status_map: dict[str, str] | None = None


class WebhookSigningIn(Strict):
    scheme: WebhookScheme = WEBHOOK_SCHEMES[0]
    secret: SecretIn = Field(None, description="the provider's signing secret, whsec_… (secret)")


class WebhookSigningOut(BaseModel):
    scheme: str
    secret: SecretHint | None = None


class CredentialFields(Strict):
    vendor: Vendor | None = None
    name: str | None = Field(None, examples=["acme-infobip"])
    provider_app_id: str | None = None
    provider_name: str | None = None
    provider_url: str | None = Field(None, examples=["https://api.example.com/sms/2/text/advanced"])
    method: Method | None = None
    auth: AuthIn | None = None
    headers: list[HeaderIn] | None = None
    content_type: ContentType | None = None
    payload: JsonObject | str | None = Field(
        None, description="must contain {{toNumber}}, {{fromNumber}} and {{message}}"
    )
    response: ResponseMapping | None = None
    inbound: InboundMappingIO | None = None
    delivery_reports: DeliveryReportMappingIO | None = None
    rate_limit_per_second: float | None = None
    retry_ambiguous: bool | None = None
    timeout_seconds: float | None = None
    opt_out_error_codes: list[str] | None = None
    webhook_signing: WebhookSigningIn | None = Field(
        None, description="verify the provider's webhooks (Standard Webhooks HMAC-SHA256)"
    )
    webhook_secret: SecretIn = Field(
        None,
        description="what the provider signs its webhooks with when it is not the sending "
        "secret (Twilio's Auth Token when sending with an API key); secret",
    )


class CredentialCreate(CredentialFields):
    preset: PresetName | None = None


class CredentialPatch(CredentialFields):
    preset: PresetName | None = Field(
        None, description="read-only after creation; accepted unchanged so a GET can be sent back"
    )


class AuthOut(auth_model("AuthOutFields", secret=SecretHint, base=BaseModel)):  # type: ignore[misc]
    """How requests authenticate; secrets shown as hints."""


class HeaderOut(BaseModel):
    label: str
    type: str
    value: str | SecretHint


class CredentialOut(BaseModel):
    id: str
    vendor: str
    name: str
    provider_app_id: str
    provider_name: str
    provider_url: str
    method: str
    auth: AuthOut
    headers: list[HeaderOut]
    content_type: str
    payload: dict[str, Any] | str
    response: ResponseMapping
    inbound: InboundMappingIO | None = None
    delivery_reports: DeliveryReportMappingIO | None = None
    rate_limit_per_second: float | None
    retry_ambiguous: bool
    timeout_seconds: float
    opt_out_error_codes: list[str]
    webhook_signing: WebhookSigningOut | None = None
    webhook_secret: SecretHint | None = None
    preset: str | None
    created_at: datetime
    updated_at: datetime


class CredentialList(BaseModel):
    items: list[CredentialOut]
    next_cursor: str | None


class PreviewIn(Strict):
    to: str = Field(examples=["+33612345678"])
    from_: str | None = Field(None, alias="from", examples=["+15550001111"])
    message: str = Field(examples=["Hi"])

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PreviewOut(BaseModel):
    method: str
    url: str
    headers: dict[str, str]
    body: str


class TestIn(PreviewIn):
    message: str = "smsbridge test message"


class TestOut(BaseModel):
    ok: bool
    status_code: int | None
    provider_message_id: str | None = None
    latency_ms: int
    error: str | None = None
    provider_answer: str | None = None
    """The start of the provider's answer, secrets masked."""


class PresetOut(BaseModel):
    name: str
    provider_name: str
    provider_url: str
    auth_type: str
    content_type: str
    needs: list[str] = Field(description="fields you must still give")
    document: dict[str, Any]


class PresetList(BaseModel):
    items: list[PresetOut]
