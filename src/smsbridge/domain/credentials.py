"""Provider credentials: the definition of how to call one HTTP SMS provider.

The types of a validated credential and the headers every request through it carries.
A credential arrives as a JSON-like *document* (from the API, a CLI file or a preset);
:func:`smsbridge.domain.credential_parser.parse_credential` checks every field and returns a
:class:`Credential`. Secrets (bearer token, basic password, API key, ``secret`` headers) are
plain values here; encrypting them at rest is the service's job.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from smsbridge import __version__
from smsbridge.domain.messages import DELIVERY_OUTCOMES, MessageStatus
from smsbridge.domain.payload import ContentType, PayloadTemplate, UrlTemplate
from smsbridge.domain.secret_hints import mask_secret

USER_AGENT = f"smsbridge/{__version__}"
VENDORS = ("custom",)
METHODS = ("POST", "PUT", "PATCH", "GET")
RESERVED_HEADERS = frozenset({"authorization", "content-type", "content-length", "host"})
MAX_NAME = 100
DELIVERY_STATUSES: frozenset[str] = frozenset({MessageStatus.SENT, *DELIVERY_OUTCOMES})
"""The statuses a delivery report's ``status_map`` may name."""


class AuthType(StrEnum):
    BEARER = "bearer"
    BASIC = "basic"
    API_KEY = "api_key"
    OAUTH2 = "oauth2_client_credentials"
    HMAC = "hmac"
    NONE = "none"


HMAC_ALGORITHMS = ("sha256", "sha1")
HMAC_ENCODINGS = ("hex", "base64")
HMAC_TIMESTAMPS = ("unix", "unix_ms")
OAUTH2_CLIENT_AUTH = ("basic", "body")
HMAC_PLACEHOLDERS = ("{method}", "{path}", "{timestamp}", "{body}")
DEFAULT_STRING_TO_SIGN = "{method}\n{path}\n{timestamp}\n{body}"


class HeaderType(StrEnum):
    STATIC = "static"
    SECRET = "secret"  # noqa: S105 (a header kind, not a password)


@dataclass(frozen=True)
class Auth:
    """How requests authenticate. Secret fields: ``token``, ``password``, ``key``,
    ``client_secret``, ``secret`` (see :data:`SECRET_AUTH_FIELDS`).

    ``oauth2_client_credentials``: a token from ``token_url`` (RFC 6749 §4.4; the client
    authenticates with HTTP Basic, or in the form body with ``client_auth: "body"``), sent as
    ``Authorization: Bearer …``, cached until it expires, fetched again once on a 401.

    ``hmac``: each request carries ``timestamp_header`` and ``signature_header``; the signature
    is HMAC(``secret``, ``string_to_sign`` with ``{method}``, ``{path}`` (with the query),
    ``{timestamp}`` and ``{body}`` filled in), hex or base64, after ``signature_prefix``."""

    type: AuthType
    scheme: str = "Bearer"
    token: str = ""
    username: str = ""
    password: str = ""
    header: str = ""
    key: str = ""
    token_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    scope: str = ""
    client_auth: str = "basic"
    secret: str = ""
    algorithm: str = "sha256"
    signature_header: str = "X-Signature"
    timestamp_header: str = "X-Timestamp"
    string_to_sign: str = DEFAULT_STRING_TO_SIGN
    encoding: str = "hex"
    signature_prefix: str = ""
    timestamp_format: str = "unix"


AUTH_FIELDS: dict[AuthType, tuple[str, ...]] = {
    AuthType.BEARER: ("scheme", "token"),
    AuthType.BASIC: ("username", "password"),
    AuthType.API_KEY: ("header", "key"),
    AuthType.OAUTH2: ("token_url", "client_id", "client_secret", "scope", "client_auth"),
    AuthType.HMAC: (
        "secret",
        "algorithm",
        "signature_header",
        "timestamp_header",
        "string_to_sign",
        "encoding",
        "signature_prefix",
        "timestamp_format",
    ),
    AuthType.NONE: (),
}
"""The :class:`Auth` fields each type uses, secret ones included, in document order."""

AUTH_CHOICES: dict[str, tuple[str, ...]] = {
    "client_auth": OAUTH2_CLIENT_AUTH,
    "algorithm": HMAC_ALGORITHMS,
    "encoding": HMAC_ENCODINGS,
    "timestamp_format": HMAC_TIMESTAMPS,
}
"""The :class:`Auth` fields that take one of a few values; the first is the default."""

SECRET_AUTH_FIELDS: dict[AuthType, tuple[str, ...]] = {
    AuthType.BEARER: ("token",),
    AuthType.BASIC: ("password",),
    AuthType.API_KEY: ("key",),
    AuthType.OAUTH2: ("client_secret",),
    AuthType.HMAC: ("secret",),
    AuthType.NONE: (),
}


@dataclass(frozen=True)
class HeaderParam:
    label: str
    type: HeaderType
    value: str


@dataclass(frozen=True)
class InboundMapping:
    """Where an inbound (MO) webhook keeps its fields; JSONPath expressions."""

    items_path: str | None = None
    from_path: str | None = None
    to_path: str | None = None
    text_path: str | None = None
    id_path: str | None = None


@dataclass(frozen=True)
class DeliveryReportMapping:
    """Where a delivery-report webhook keeps its fields, and how its statuses map to ours."""

    items_path: str | None = None
    message_id_path: str | None = None
    status_path: str | None = None
    error_path: str | None = None
    status_map: Mapping[str, str] = field(default_factory=dict)


WEBHOOK_SCHEMES = ("standard_webhooks",)


@dataclass(frozen=True)
class WebhookSigning:
    """How the provider signs its webhooks (verified on both webhook URLs).

    ``standard_webhooks``: https://www.standardwebhooks.com — ``webhook-id``,
    ``webhook-timestamp`` and ``webhook-signature`` headers, HMAC-SHA256 keyed with the
    ``whsec_…`` secret."""

    scheme: str
    secret: str


MIN_MASKED_SECRET = 4
"""Shorter values are not searched for in answers: they would mask ordinary characters."""


@dataclass(frozen=True)
class Credential:
    """A validated credential; ``payload`` is kept as given, ``template`` is its compiled form."""

    vendor: str
    name: str
    provider_app_id: str
    provider_name: str
    provider_url: str
    method: str
    auth: Auth
    headers: tuple[HeaderParam, ...]
    content_type: ContentType
    payload: Any
    template: PayloadTemplate = field(compare=False, repr=False)
    url_template: UrlTemplate = field(compare=False, repr=False)
    message_id_path: str | None = None
    success_path: str | None = None
    success_values: tuple[str, ...] = ()
    inbound: InboundMapping | None = None
    delivery_reports: DeliveryReportMapping | None = None
    rate_limit_per_second: float | None = None
    retry_ambiguous: bool = True
    timeout_seconds: float = 10.0
    preset: str | None = None
    opt_out_error_codes: tuple[str, ...] = ()
    webhook_signing: WebhookSigning | None = None
    webhook_secret: str = ""
    """What the provider signs its webhooks with, where that is not the sending secret
    (Twilio's Auth Token, when sending with an API key); empty: the sending secret."""

    @cached_property
    def prepared(self) -> tuple[dict[str, str], str]:
        """The request headers and URL, the same for every message: computed once."""
        return request_headers(self), self.url_template.render({"appId": self.provider_app_id})

    @property
    def is_sandbox(self) -> bool:
        return self.provider_url.startswith("sandbox://")

    def secret_values(self) -> dict[str, str]:
        """Every secret keyed by its field path (``auth.token``, ``headers.X-Key``)."""
        secrets = {
            f"auth.{name}": getattr(self.auth, name) for name in SECRET_AUTH_FIELDS[self.auth.type]
        }
        for header in self.headers:
            if header.type is HeaderType.SECRET:
                secrets[f"headers.{header.label}"] = header.value
        if self.webhook_signing is not None:
            secrets["webhook_signing.secret"] = self.webhook_signing.secret
        if self.webhook_secret:
            secrets["webhook_secret"] = self.webhook_secret
        return secrets

    @cached_property
    def maskable_secrets(self) -> tuple[str, ...]:
        """The secret values long enough to be looked for in provider answers, worked out once
        per credential (not once per send)."""
        return tuple(v for v in self.secret_values().values() if len(v) >= MIN_MASKED_SECRET)


def request_headers(credential: Credential, *, masked: bool = False) -> dict[str, str]:
    """The headers of every request through ``credential`` (they do not vary per message)."""
    custom = {h.label.lower() for h in credential.headers}
    headers: dict[str, str] = {"Content-Type": credential.content_type.value}
    if "accept" not in custom:
        headers["Accept"] = "application/json"
    if "user-agent" not in custom:
        headers["User-Agent"] = USER_AGENT
    auth = credential.auth
    if auth.type is AuthType.BEARER:
        headers["Authorization"] = f"{auth.scheme} {_maybe(auth.token, masked)}"
    elif auth.type is AuthType.BASIC:
        if masked:
            headers["Authorization"] = f"Basic base64({auth.username}:{mask_secret(auth.password)})"
        else:
            raw = f"{auth.username}:{auth.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
    elif auth.type is AuthType.API_KEY:
        headers[auth.header] = _maybe(auth.key, masked)
    elif auth.type is AuthType.OAUTH2 and masked:
        headers["Authorization"] = "Bearer ****(token from the OAuth2 token URL)"
    elif auth.type is AuthType.HMAC and masked:
        headers[auth.timestamp_header] = "(the time of the request)"
        headers[auth.signature_header] = f"{auth.signature_prefix}****(HMAC-{auth.algorithm})"
    for header in credential.headers:
        secret = header.type is HeaderType.SECRET
        headers[header.label] = _maybe(header.value, masked and secret)
    return headers


def _maybe(value: str, masked: bool) -> str:
    return mask_secret(value) if masked else value
