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
        # Keys for one-way fingerprints (click addresses) and derived keys, one per secret key
        # so that they need no setting of their own and never equal it; the first one is used.
        self._derivation_keys = [
            hashlib.sha256(b"smsbridge fingerprint\0" + key.encode()).digest() for key in keys
        ]
        self._fingerprint_key = self._derivation_keys[0]

    def derive(self, label: str) -> bytes:
        """A key for one purpose (``label``), derived from the first secret key."""
        return hmac.new(self._fingerprint_key, label.encode(), hashlib.sha256).digest()

    def derive_each(self, label: str) -> list[bytes]:
        """The key for ``label`` derived from each secret key, the first key's first: what the
        others derive still verifies while a rotation keeps them configured."""
        return [hmac.new(k, label.encode(), hashlib.sha256).digest() for k in self._derivation_keys]

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
