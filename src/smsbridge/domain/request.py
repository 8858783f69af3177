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


def build_request(
    credential: Credential, values: MessageValues, *, masked: bool = False
) -> ProviderRequest:
    """The request to send; with ``masked`` every secret is replaced by :func:`mask_secret`."""
    placeholders = values.as_placeholders(credential.provider_app_id)
    custom = {h.label.lower() for h in credential.headers}
    headers: list[tuple[str, str]] = [("Content-Type", credential.content_type.value)]
    if "accept" not in custom:
        headers.append(("Accept", "application/json"))
    if "user-agent" not in custom:
        headers.append(("User-Agent", USER_AGENT))
    auth = credential.auth
    if auth.type is AuthType.BEARER:
        headers.append(("Authorization", f"{auth.scheme} {_maybe(auth.token, masked)}"))
    elif auth.type is AuthType.BASIC:
        if masked:
            headers.append(
                ("Authorization", f"Basic base64({auth.username}:{mask_secret(auth.password)})")
            )
        else:
            raw = f"{auth.username}:{auth.password}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(raw).decode("ascii")))
    elif auth.type is AuthType.API_KEY:
        headers.append((auth.header, _maybe(auth.key, masked)))
    for header in credential.headers:
        secret = header.type is HeaderType.SECRET
        headers.append((header.label, _maybe(header.value, masked and secret)))
    return ProviderRequest(
        method=credential.method,
        url=credential.url_template.render({"appId": credential.provider_app_id}),
        headers=tuple(headers),
        body=credential.template.render(placeholders),
    )


def _maybe(value: str, masked: bool) -> str:
    return mask_secret(value) if masked else value
