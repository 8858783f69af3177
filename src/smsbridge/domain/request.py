"""Turning a credential and one message into the exact HTTP request for the provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from smsbridge.domain.credentials import MIN_MASKED_SECRET, Auth, Credential, request_headers
from smsbridge.domain.segments import count_segments


@dataclass(frozen=True)
class MessageValues:
    """The values a payload's placeholders can take."""

    to_number: str
    from_number: str
    message: str
    message_id: str = ""
    status_callback_url: str = ""

    @property
    def encoding(self) -> str:
        """``GSM-7`` or ``UCS-2``: how the message travels (:mod:`smsbridge.domain.segments`)."""
        return count_segments(self.message).encoding.value

    def as_placeholders(self, app_id: str) -> dict[str, str]:
        return {
            "toNumber": self.to_number,
            "fromNumber": self.from_number,
            "toNumberDigits": number_digits(self.to_number),
            "fromNumberDigits": number_digits(self.from_number),
            "message": self.message,
            "messageId": self.message_id,
            "statusCallbackUrl": self.status_callback_url,
            "appId": app_id,
        }


_INTERNATIONAL = re.compile(r"^(?:\+|00)([0-9]+)$")


def number_digits(address: str) -> str:
    """A phone number without its international prefix (``+`` or ``00``), for providers that
    want digits only (Vonage); a short code or an alphanumeric sender id is kept as it is."""
    match = _INTERNATIONAL.match(address)
    return match.group(1) if match else address


@dataclass(frozen=True)
class ProviderRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def build_request(
    credential: Credential, values: MessageValues, *, masked: bool = False
) -> ProviderRequest:
    """The request to send; with ``masked`` every secret is replaced by :func:`mask_secret`."""
    if masked:
        headers = request_headers(credential, masked=True)
        url = credential.url_template.render({"appId": credential.provider_app_id})
    else:
        headers, url = credential.prepared
    placeholders = values.as_placeholders(credential.provider_app_id)
    if "encoding" in credential.template.placeholders:  # counted only for payloads using it
        placeholders["encoding"] = values.encoding
    return ProviderRequest(
        method=credential.method,
        url=url,
        headers=tuple(headers.items()),
        body=credential.template.render(placeholders),
    )


_SIGNED_PARTS = re.compile(r"\{(method|path|timestamp|body)\}")


def string_to_sign(auth: Auth, *, method: str, path: str, timestamp: str, body: bytes) -> bytes:
    """``auth.string_to_sign`` with its placeholders filled in (nothing else is interpreted:
    other braces are literal text)."""
    values = {"method": method.encode(), "path": path.encode(), "timestamp": timestamp.encode()}
    out = bytearray()
    # split() with one group: even items are literal text, odd items placeholder names
    for index, piece in enumerate(_SIGNED_PARTS.split(auth.string_to_sign)):
        if index % 2 == 0:
            out += piece.encode()
        else:
            out += body if piece == "body" else values[piece]
    return bytes(out)


def hmac_signature(auth: Auth, message: bytes) -> str:
    digest = hmac.new(auth.secret.encode(), message, getattr(hashlib, auth.algorithm)).digest()
    encoded = digest.hex() if auth.encoding == "hex" else base64.b64encode(digest).decode()
    return auth.signature_prefix + encoded


def sign_request(request: ProviderRequest, auth: Auth, now: datetime) -> ProviderRequest:
    """``request`` with the HMAC timestamp and signature headers of ``auth`` added."""
    seconds = now.timestamp()
    timestamp = str(int(seconds * 1000) if auth.timestamp_format == "unix_ms" else int(seconds))
    parts = urlsplit(request.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    signed = string_to_sign(
        auth, method=request.method, path=path, timestamp=timestamp, body=request.body
    )
    headers = (
        *request.headers,
        (auth.timestamp_header, timestamp),
        (auth.signature_header, hmac_signature(auth, signed)),
    )
    return replace(request, headers=headers)


def with_bearer(request: ProviderRequest, token: str) -> ProviderRequest:
    """``request`` carrying ``Authorization: Bearer token`` (OAuth2)."""
    kept = tuple((k, v) for k, v in request.headers if k.lower() != "authorization")
    return replace(request, headers=(*kept, ("Authorization", f"Bearer {token}")))


def sent_secrets(credential: Credential, request: ProviderRequest) -> tuple[str, ...]:
    """Every secret ``request`` carries, as it may come back in an echo: the credential's
    secret values, and the ``Authorization`` header's value with and without its scheme."""
    found = list(credential.maskable_secrets)
    for name, value in request.headers:
        if name.lower() == "authorization":
            found.append(value)
            _, _, token = value.partition(" ")
            if len(token) >= MIN_MASKED_SECRET:
                found.append(token)
    return tuple(found)
