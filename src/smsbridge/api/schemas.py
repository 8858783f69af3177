"""Pydantic I/O schemas: they document the API (OpenAPI) and check types at the edge.

Semantic checks (placeholders, header names, URL policy, JSONPath…) live in ``domain/`` so the
API, the CLI and presets share them; these models only shape the request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, field_validator

from smsbridge.domain.campaigns import MAX_THROTTLE, MIN_THROTTLE
from smsbridge.domain.credentials import AUTH_CHOICES, AUTH_FIELDS, SECRET_AUTH_FIELDS, AuthType

NUL_REFUSED = "must not contain NUL characters (U+0000)"


def holds_nul(value: Any) -> bool:
    """Whether a JSON value has U+0000 in a string or a key (nested models check themselves)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


class Strict(BaseModel):
    """A request body: unknown fields are refused, and so is U+0000 in any text, which
    PostgreSQL cannot store (SQLite can; both refuse it here, alike)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _without_nul(cls, value: Any) -> Any:
        if holds_nul(value):
            raise ValueError(NUL_REFUSED)
        return value


_INT_RANGE = range(-(2**63), 2**64)


def _big_integer_at(value: Any, path: str) -> str | None:
    """Where ``value`` holds an integer outside 64 bits, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value in _INT_RANGE else path or "the value"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _big_integer_at(item, f"{path}[{key!r}]" if path else f"[{key!r}]")
        if found is not None:
            return found
    return None


def _fits_64_bits(value: dict[str, Any]) -> dict[str, Any]:
    # JSON allows integers of any size; our JSON encoding (storage, idempotency hashes) does not.
    found = _big_integer_at(value, "")
    if found is not None:
        raise ValueError(f"{found} is an integer outside 64 bits")
    return value


MAX_JSON_DEPTH = 32


def _not_too_deep(value: dict[str, Any]) -> dict[str, Any]:
    # Deep values exhaust the recursion of the checks, the encoders and the template renderer
    # after them (a 500); counted without recursion, before any of them runs.
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"is nested deeper than {MAX_JSON_DEPTH} levels")
        pending.extend((child, depth + 1) for child in children)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_not_too_deep), AfterValidator(_fits_64_bits)]
"""A free-form JSON object from a client (variables, attributes, templates)."""


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
    type: Literal["static", "secret"] = "static"
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


PresetName = Literal["sandbox", "twilio", "infobip", "sinch", "vonage", "plivo", "telnyx"]


class WebhookSigningIn(Strict):
    scheme: Literal["standard_webhooks"] = "standard_webhooks"
    secret: SecretIn = Field(None, description="the provider's signing secret, whsec_… (secret)")


class WebhookSigningOut(BaseModel):
    scheme: str
    secret: SecretHint | None = None


class CredentialFields(Strict):
    vendor: Literal["custom"] | None = None
    name: str | None = Field(None, examples=["acme-infobip"])
    provider_app_id: str | None = None
    provider_name: str | None = None
    provider_url: str | None = Field(None, examples=["https://api.example.com/sms/2/text/advanced"])
    method: Literal["POST", "PUT", "PATCH", "GET"] | None = None
    auth: AuthIn | None = None
    headers: list[HeaderIn] | None = None
    content_type: Literal["application/json", "application/x-www-form-urlencoded"] | None = None
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


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]]


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


class LinkTrackingIO(Strict):
    enabled: bool = False
    base_url: str | None = Field(None, examples=["https://go.acme.example"])
    expire_after_days: int | None = Field(
        None,
        ge=1,
        le=3650,
        description="short links answer 404 this many days after their message; null: never",
    )


class KeywordsIO(Strict):
    opt_out: list[str] | None = None
    opt_in: list[str] | None = None
    help: list[str] | None = None


class RepliesIO(Strict):
    opt_out: str | None = None
    opt_in: str | None = None
    help: str | None = None
    confirm_opt_in: str | None = Field(
        None, description="with double_opt_in: the question asked before an opt-in counts"
    )


class QuietHoursIO(Strict):
    start: str | None = Field(None, examples=["21:00"], description="HH:MM, recipient's time")
    end: str | None = Field(None, examples=["08:00"], description="HH:MM; before start: next day")
    default_timezone: str | None = Field(
        None,
        examples=["Europe/Paris"],
        description="for numbers whose prefix spans several zones (default UTC)",
    )


class FrequencyCapIO(Strict):
    max_messages: int | None = Field(None, examples=[3])
    window_hours: float | None = Field(None, examples=[24])


class SurfaceFields(Strict):
    name: str | None = Field(None, examples=["acme-marketing"])
    credential_id: str | None = None
    fallback_credential_ids: list[str] | None = None
    sender: str | None = Field(None, examples=["+15550001111"])
    message_type: Literal["marketing", "transactional"] | None = None
    link_tracking: LinkTrackingIO | None = None
    keywords: KeywordsIO | None = None
    replies: RepliesIO | None = None
    double_opt_in: bool | None = Field(
        None, description="an opt-in counts only after the number answers YES to a confirmation"
    )
    quiet_hours: QuietHoursIO | None = Field(
        None, description="marketing messages wait for the end of this local-time window"
    )
    frequency_cap: FrequencyCapIO | None = Field(
        None, description="at most max_messages marketing messages per number per window"
    )


class SurfaceOut(BaseModel):
    id: str
    name: str
    credential_id: str
    fallback_credential_ids: list[str]
    sender: str
    message_type: str
    link_tracking: LinkTrackingIO
    keywords: dict[str, list[str]]
    replies: dict[str, str]
    double_opt_in: bool = False
    quiet_hours: QuietHoursIO | None = None
    frequency_cap: FrequencyCapIO | None = None
    inbound_webhook_url: str
    status_webhook_url: str
    created_at: datetime
    updated_at: datetime


class SurfaceList(BaseModel):
    items: list[SurfaceOut]
    next_cursor: str | None


class MessageIn(Strict):
    surface_id: str
    to: str | None = Field(None, examples=["+33612345678"])
    profile_id: str | None = Field(
        None, description="a profile's external_id: its phone is used, its attributes personalize"
    )
    body: str = Field(examples=["Hi Ana: https://acme.example/sale"])
    variables: JsonObject = Field(default_factory=dict)
    send_at: datetime | None = None


class MessageEvent(BaseModel):
    at: datetime
    type: str
    detail: dict[str, Any] | None = None


class MessageOut(BaseModel):
    id: str
    surface_id: str
    campaign_id: str | None
    profile_id: str | None = None
    credential_id: str | None
    to: str
    from_: str = Field(alias="from")
    body: str
    segments: int
    encoding: str
    message_type: str
    status: Literal[
        "scheduled",
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "suppressed",
        "cancelled",
    ]
    provider_message_id: str | None
    attempts: int
    last_error: str | None
    send_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    events: list[MessageEvent] | None = None

    model_config = ConfigDict(populate_by_name=True)


class MessageList(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class MessagePreviewIn(Strict):
    surface_id: str
    body: str = Field(examples=["Hi {{ profile.firstName | default('there') }}!"])
    to: str | None = None
    profile_id: str | None = None
    variables: JsonObject = Field(default_factory=dict)


class PreviewProblem(BaseModel):
    field: str
    message: str


class MessagePreviewOut(BaseModel):
    surface_id: str
    to: str | None
    profile_id: str | None
    text: str = Field(description="the message as it would be sent")
    characters: int
    segments: int
    encoding: Literal["GSM-7", "UCS-2"]
    units: int = Field(description="septets (GSM-7) or UTF-16 code units (UCS-2)")
    ucs2_characters: list[str] = Field(description="the characters that force UCS-2")
    undefined: list[str] = Field(description="names the template used that have no value")
    errors: list[PreviewProblem]


class ProfileIn(Strict):
    external_id: str | None = Field(None, description="optional; must equal the id in the URL")
    phone: str = Field(examples=["+33612345678"])
    attributes: JsonObject = Field(default_factory=dict, examples=[{"firstName": "Ana"}])
    timezone: str | None = Field(None, examples=["Europe/Paris"])


class ProfileOut(BaseModel):
    external_id: str
    phone: str
    attributes: dict[str, Any]
    timezone: str | None
    created_at: datetime
    updated_at: datetime


class ProfileList(BaseModel):
    items: list[ProfileOut]
    next_cursor: str | None


class ImportProblem(BaseModel):
    line: int
    field: str | None
    message: str


class ImportOut(BaseModel):
    imported: int = Field(description="profiles created or updated")
    lines: int
    error_count: int = Field(description="all problems; `errors` lists the first 1,000")
    errors: list[ImportProblem]


class CampaignIn(Strict):
    name: str
    surface_id: str
    body: str = Field(examples=["Hi {{ profile.firstName }}, -20% today: https://acme.example/s"])
    audience: JsonObject = Field(
        examples=[
            {"all": True},
            {"profile_ids": ["u1", "u2"]},
            {"filter": {"attributes.country": "FR"}},
        ]
    )
    variables: JsonObject = Field(default_factory=dict)
    send_at: datetime | None = None
    throttle_per_second: float | None = Field(
        None,
        ge=MIN_THROTTLE,
        le=MAX_THROTTLE,
        allow_inf_nan=False,
        strict=True,  # true is not 1 message per second
        description="messages per second for this campaign, on top of the credential's limit",
    )


class CampaignOut(BaseModel):
    id: str
    name: str
    surface_id: str
    body: str
    variables: dict[str, Any]
    audience: dict[str, Any]
    send_at: datetime | None
    throttle_per_second: float | None
    status: Literal["draft", "running", "completed", "cancelled"]
    created_at: datetime
    updated_at: datetime
    launched_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    fanout_done: bool
    counts: dict[str, int] | None = Field(
        None, description="targeted, excluded, pending and one count per message status"
    )
    excluded_reasons: dict[str, int] | None = None


class CampaignList(BaseModel):
    items: list[CampaignOut]
    next_cursor: str | None


class ExclusionOut(BaseModel):
    profile_id: str
    phone: str | None
    reason: str
    detail: str | None


class ExclusionList(BaseModel):
    items: list[ExclusionOut]
    next_cursor: str | None


class ReportRates(BaseModel):
    delivery: float
    bounce: float
    error: float
    click: float


class TimelinePoint(BaseModel):
    at: datetime
    sent: int
    delivered: int
    clicks: int


class CredentialCounts(BaseModel):
    sent: int = Field(description="accepted by the provider: sent, delivered or undelivered")
    failed: int


class ReportOut(BaseModel):
    targeted: int
    excluded: int
    excluded_reasons: dict[str, int]
    sent: int = Field(description="accepted by the provider: sent, delivered or undelivered")
    delivered: int
    bounced: int = Field(description="undelivered")
    errors: int = Field(description="failed")
    error_reasons: dict[str, int]
    pending: int
    suppressed: int
    cancelled: int
    clicks: int = Field(description="human clicks (link-preview bots left out)")
    unique_clicks: int = Field(description="messages clicked at least once by a human")
    bot_clicks: int
    opt_outs: int
    segments: int
    rates: ReportRates
    bucket: Literal["minute", "hour", "day"]
    timeline: list[TimelinePoint]
    by_credential: dict[str, CredentialCounts] = Field(
        default_factory=dict,
        description="per credential id, counted on the credential of each message's last attempt",
    )


class CampaignReport(ReportOut):
    campaign_id: str
    status: str


class SurfaceReport(ReportOut):
    surface_id: str
    from_: datetime = Field(alias="from")
    to: datetime

    model_config = ConfigDict(populate_by_name=True)
