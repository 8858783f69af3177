"""OAuth2 client-credentials tokens (RFC 6749 §4.4) for provider requests: fetched through the
same guarded HTTP transport, cached until shortly before they expire, one fetch at a time per
client, dropped when the provider answers 401."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import orjson

from smsbridge.domain.credentials import USER_AGENT, Auth
from smsbridge.domain.ports import ProviderResponse, ProviderTransport
from smsbridge.domain.request import ProviderRequest
from smsbridge.errors import ProviderTimeout, ProviderUnreachable

EXPIRY_MARGIN = 30.0
"""Seconds before a token's announced expiry when it is no longer used."""
DEFAULT_LIFETIME = 3600.0
"""A token whose answer has no ``expires_in`` is kept this long."""


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # in seconds of the cache's ``seconds`` clock


class TokenRefused(Exception):
    """The token endpoint answered, but not with a token; ``response`` says what it said."""

    def __init__(self, response: ProviderResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _key(auth: Auth) -> str:
    """Cache key: a new secret, scope or URL is a new client (the secret is only hashed)."""
    material = "\n".join((auth.token_url, auth.client_id, auth.client_secret, auth.scope))
    return hashlib.sha256(material.encode()).hexdigest()


def token_request(auth: Auth) -> ProviderRequest:
    form = {"grant_type": "client_credentials"}
    if auth.scope:
        form["scope"] = auth.scope
    headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept", "application/json"),
        ("User-Agent", USER_AGENT),
    ]
    if auth.client_auth == "body":
        form["client_id"] = auth.client_id
        form["client_secret"] = auth.client_secret
    else:  # RFC 6749 §2.3.1: form-encode each part, then HTTP Basic
        pair = f"{quote(auth.client_id, safe='')}:{quote(auth.client_secret, safe='')}"
        headers.append(("Authorization", "Basic " + base64.b64encode(pair.encode()).decode()))
    return ProviderRequest("POST", auth.token_url, tuple(headers), urlencode(form).encode())


class TokenCache:
    def __init__(
        self, transport: ProviderTransport, *, seconds: Callable[[], float] = time.monotonic
    ) -> None:
        """``seconds``: the time, in seconds, that token lifetimes count against (the gateway
        gives its clock's, so tests move it by hand)."""
        self._transport = transport
        self._seconds = seconds
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    def forget(self, auth: Auth, value: str) -> None:
        """The provider refused ``value`` (401): the next :meth:`get` fetches a new token."""
        key = _key(auth)
        cached = self._tokens.get(key)
        if cached is not None and cached.value == value:
            del self._tokens[key]

    async def get(self, auth: Auth, *, timeout: float) -> str:
        key = _key(auth)
        cached = self._tokens.get(key)
        if cached is not None and cached.expires_at > self._seconds():
            return cached.value
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one fetch per client; the others wait for its token
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_at > self._seconds():
                return cached.value
            token = await self._fetch(auth, timeout)
            self._tokens[key] = token
            return token.value

    async def _fetch(self, auth: Auth, timeout: float) -> Token:
        self.fetches += 1
        try:
            response = await self._transport.send(token_request(auth), timeout=timeout)
        except ProviderTimeout as exc:  # no SMS went out: not ambiguous, just unreachable
            raise ProviderUnreachable("the OAuth2 token endpoint did not answer in time") from exc
        if not 200 <= response.status < 300:
            raise TokenRefused(response)
        try:
            answer = orjson.loads(response.body)
            value = answer["access_token"]
            lifetime = float(answer.get("expires_in") or DEFAULT_LIFETIME)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise TokenRefused(
                ProviderResponse(502, b'{"error": "the token endpoint answered without a token"}')
            ) from None
        if not isinstance(value, str) or not value:
            raise TokenRefused(ProviderResponse(502, b'{"error": "empty access_token"}'))
        return Token(value, self._seconds() + max(0.0, lifetime - EXPIRY_MARGIN))
