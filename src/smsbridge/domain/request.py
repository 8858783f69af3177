"""Turning a credential and one message into the exact HTTP request for the provider."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from smsbridge import __version__
from smsbridge.domain.credentials import AuthType, Credential, HeaderType

USER_AGENT = f"smsbridge/{__version__}"


@dataclass(frozen=True)
class MessageValues:
    """The values a payload's placeholders can take."""

    to_number: str
    from_number: str
    message: str
    message_id: str = ""
    status_callback_url: str = ""

    def as_placeholders(self, app_id: str) -> dict[str, str]:
        return {
            "toNumber": self.to_number,
            "fromNumber": self.from_number,
            "toNumberDigits": self.to_number.removeprefix("+"),
            "fromNumberDigits": self.from_number.removeprefix("+"),
            "message": self.message,
            "messageId": self.message_id,
            "statusCallbackUrl": self.status_callback_url,
            "appId": app_id,
        }


@dataclass(frozen=True)
class ProviderRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


MIN_HINTED_LENGTH = 6


def secret_hint(value: str) -> str:
    """What may be shown of a secret: its last four characters, none for short secrets."""
    return value[-4:] if len(value) >= MIN_HINTED_LENGTH else ""


def mask_secret(value: str) -> str:
    return "****" + secret_hint(value)


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
    for header in credential.headers:
        secret = header.type is HeaderType.SECRET
        headers[header.label] = _maybe(header.value, masked and secret)
    return headers


def build_request(
    credential: Credential, values: MessageValues, *, masked: bool = False
) -> ProviderRequest:
    """The request to send; with ``masked`` every secret is replaced by :func:`mask_secret`."""
    if masked:
        headers = request_headers(credential, masked=True)
        url = credential.url_template.render({"appId": credential.provider_app_id})
    else:
        headers, url = credential.prepared
    return ProviderRequest(
        method=credential.method,
        url=url,
        headers=tuple(headers.items()),
        body=credential.template.render(values.as_placeholders(credential.provider_app_id)),
    )


def _maybe(value: str, masked: bool) -> str:
    return mask_secret(value) if masked else value
