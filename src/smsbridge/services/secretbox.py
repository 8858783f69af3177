"""Encryption of stored secrets with MultiFernet (the first key encrypts, all keys decrypt)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from smsbridge.errors import ConfigurationError, SecretsUnavailable


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError("SMSBRIDGE_SECRET_KEYS holds no key")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except ValueError:
                raise ConfigurationError(
                    f"SMSBRIDGE_SECRET_KEYS: key #{position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)
        # A key for one-way fingerprints (click addresses), derived from the first secret key
        # so that it needs no setting of its own and never equals it.
        self._fingerprint_key = hashlib.sha256(
            b"smsbridge fingerprint\0" + keys[0].encode()
        ).digest()

    def derive(self, label: str) -> bytes:
        """A key for one purpose (``label``), derived from the first secret key."""
        return hmac.new(self._fingerprint_key, label.encode(), hashlib.sha256).digest()

    def fingerprint(self, value: str) -> str:
        """A keyed one-way hash of ``value`` (HMAC-SHA256, 32 hex characters)."""
        return hmac.new(self._fingerprint_key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def seal(self, values: dict[str, str]) -> str:
        return self._fernet.encrypt(orjson.dumps(values)).decode("ascii")

    def open(self, token: str) -> dict[str, str]:
        try:
            data = orjson.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken:
            raise SecretsUnavailable() from None
        return {str(k): str(v) for k, v in data.items()}

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretsUnavailable() from None
