"""Webhook signatures.

Twilio signs each webhook with ``X-Twilio-Signature``: base64 of HMAC-SHA1, keyed with the
account's auth token, over the full URL Twilio requested followed by every form parameter's
name and value, sorted by name (https://www.twilio.com/docs/usage/security). Whether the URL
carries an explicit port depends on the caller, so, like Twilio's own libraries, both forms
are tried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_forms(url: str) -> list[str]:
    """``url`` as given, then without its port, or with the scheme's default port."""
    parts = urlsplit(url)
    forms = [url]
    host = parts.hostname or ""
    if parts.port is not None:
        forms.append(urlunsplit(parts._replace(netloc=host)))
    elif parts.scheme in _DEFAULT_PORTS:
        forms.append(urlunsplit(parts._replace(netloc=f"{host}:{_DEFAULT_PORTS[parts.scheme]}")))
    return forms


def twilio_signature_valid(
    auth_token: str, signature: str | None, url: str, params: Mapping[str, str]
) -> bool:
    if not signature or not auth_token:
        return False
    return any(
        hmac.compare_digest(twilio_signature(auth_token, form, params), signature)
        for form in _url_forms(url)
    )


STANDARD_WEBHOOKS_TOLERANCE = 300  # seconds either way


def standard_webhooks_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{id}.{timestamp}.{body}`` (standardwebhooks.com)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def standard_webhooks_valid(
    secret: str, headers: Mapping[str, str], body: bytes, now: float
) -> bool:
    """Whether the request carries a valid Standard Webhooks signature made with ``secret``.

    ``webhook-signature`` may hold several space-separated signatures (a sender rotating its
    secret signs with both): one valid ``v1`` signature is enough. The timestamp must be within
    five minutes of ``now`` (epoch seconds), so a captured request cannot be replayed later.
    """
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    given = headers.get("webhook-signature")
    if not msg_id or not timestamp or not given or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > STANDARD_WEBHOOKS_TOLERANCE:
        return False
    expected = standard_webhooks_signature(secret, msg_id, timestamp, body)
    return any(
        candidate.startswith("v1,") and hmac.compare_digest(candidate, expected)
        for candidate in given.split()
    )
