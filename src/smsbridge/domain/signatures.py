"""Webhook signatures.

Twilio signs each webhook with ``X-Twilio-Signature``: base64 of HMAC-SHA1, keyed with the
account's auth token, over the full URL Twilio requested followed by every form parameter's
name and value, sorted by name (https://www.twilio.com/docs/usage/security). A request whose
body is not a form (JSON) is signed over the URL alone, and that URL carries ``bodySHA256``,
the hex SHA-256 of the body: the body is covered only through it, so it must be present and
match. Whether the URL carries an explicit port depends on the caller, so, like Twilio's own
libraries, both forms are tried.

Header values may hold any Latin-1 text: every comparison is made on bytes, so a non-ASCII
signature is simply wrong, never an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}
FORM = "application/x-www-form-urlencoded"


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header: lower case, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of two header texts (bytes: ``given`` may be any Latin-1)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))


def twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Sequence[tuple[str, str]]
) -> str:
    """What Twilio sends in ``X-Twilio-Signature`` for ``url`` and form ``params`` (a repeated
    parameter contributes each distinct value, sorted, as Twilio's libraries do)."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    signed = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
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
    auth_token: str,
    signature: str | None,
    url: str,
    params: Mapping[str, str] | Sequence[tuple[str, str]],
) -> bool:
    if not signature or not auth_token:
        return False
    return any(
        _same(twilio_signature(auth_token, form, params), signature) for form in _url_forms(url)
    )


def twilio_request_valid(
    auth_token: str, signature: str | None, url: str, body: bytes, content_type: str | None
) -> bool:
    """Whether a whole Twilio webhook request — URL, and body by whichever way Twilio covers
    it — carries a valid ``X-Twilio-Signature``.

    A form body (the media type compared case-insensitively) is signed through its
    parameters. Any other body must be named by the URL's ``bodySHA256``: a signature over the
    bare URL would otherwise vouch for whatever body came with it.
    """
    if media_type(content_type) == FORM:
        try:
            params = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return False
        return twilio_signature_valid(auth_token, signature, url, params)
    declared = parse_qs(urlsplit(url).query).get("bodySHA256")
    if declared is None:
        if body:
            return False
    elif len(declared) != 1 or not _same(hashlib.sha256(body).hexdigest(), declared[0]):
        return False
    return twilio_signature_valid(auth_token, signature, url, ())


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
    if not msg_id or not timestamp or not given:
        return False
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False  # str.isdigit() alone admits "²", which int() refuses
    if abs(now - int(timestamp)) > STANDARD_WEBHOOKS_TOLERANCE:
        return False
    expected = standard_webhooks_signature(secret, msg_id, timestamp, body)
    return any(
        candidate.startswith("v1,") and _same(expected, candidate) for candidate in given.split()
    )
