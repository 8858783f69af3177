"""Admin sessions: a signed cookie naming a server-side session, and CSRF tokens.

The cookie is ``HttpOnly``, ``SameSite=Strict`` (and ``Secure`` when the public URL is
https); it holds no secret, only the session's random id, its CSRF token, an expiry and a
fingerprint of the API key used to sign in, signed with a key derived from the first secret
key. Every request re-checks three things: the session is still open server-side (signing
out deletes it, so a copied cookie stops working), the key is still valid (revoking it ends
its sessions), and the key's fingerprint still matches (a new ``SMSBRIDGE_ADMIN_KEY`` value
ends the sessions the old value opened, although the master key's id stays ``master``).

Every form carries the session's CSRF token, compared in constant time on every POST. The
sign-in form, posted before any session exists, carries a token bound to a random
pre-session cookie instead (a signed double submit): a page elsewhere can neither read the
cookie nor compute the token, so it cannot sign a browser in under its own key.

Whatever a client sends (non-ASCII included) is only ever compared as bytes, never trusted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

COOKIE = "smsbridge_admin"
LIFETIME = 12 * 3600
SIGN_IN_COOKIE = "smsbridge_sign_in"
SIGN_IN_LIFETIME = 3600


@dataclass(frozen=True)
class Session:
    session_id: str
    csrf: str
    expires: int
    key_fingerprint: str


def _same(expected: str, presented: str | None) -> bool:
    """Constant-time equality that accepts any text (``compare_digest`` raises on non-ASCII
    ``str``; bytes it takes whole)."""
    if not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogatepass"))


class SessionSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def new(self, session_id: str, key_hash: str, now: float | None = None) -> tuple[Session, str]:
        session = Session(
            session_id,
            secrets.token_urlsafe(24),
            int((now or time.time()) + LIFETIME),
            self.fingerprint(key_hash),
        )
        return session, self.dump(session)

    def dump(self, session: Session) -> str:
        payload = base64.urlsafe_b64encode(
            orjson.dumps(
                {
                    "s": session.session_id,
                    "c": session.csrf,
                    "e": session.expires,
                    "f": session.key_fingerprint,
                }
            )
        ).decode()
        return f"{payload}.{self._sign(payload)}"

    def load(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not payload.isascii() or not _same(self._sign(payload), signature):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(payload))
            session = Session(str(data["s"]), str(data["c"]), int(data["e"]), str(data["f"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < (now or time.time()):
            return None
        return session

    def fingerprint(self, key_hash: str) -> str:
        """What a session remembers of its key: keyed, so the cookie reveals nothing of it."""
        return self._sign(f"key:{key_hash}")[:32]

    def bound_to(self, session: Session, key_hash: str) -> bool:
        """Whether ``session`` was opened with the key whose hash is ``key_hash``."""
        return _same(self.fingerprint(key_hash), session.key_fingerprint)

    def sign_in_token(self, nonce: str) -> str:
        """The sign-in form's token for the pre-session cookie ``nonce``."""
        return self._sign(f"sign-in:{nonce}")

    def sign_in_valid(self, nonce: str | None, presented: str | None) -> bool:
        return bool(nonce) and _same(self.sign_in_token(nonce or ""), presented)

    def _sign(self, payload: str) -> str:
        data = payload.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()


def new_sign_in_nonce() -> str:
    return secrets.token_urlsafe(24)


def csrf_valid(session: Session, presented: str | None) -> bool:
    return _same(session.csrf, presented)
