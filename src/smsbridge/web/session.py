"""Admin sessions: a signed cookie naming the API key used to sign in, and a CSRF token.

The cookie is ``HttpOnly``, ``SameSite=Strict`` (and ``Secure`` when the public URL is
https); it holds no secret, only the key's id, its CSRF token and an expiry, signed with a
key derived from the first secret key. Every request re-checks that the API key is still
valid, so revoking the key ends its sessions. Every form carries the CSRF token, compared in
constant time on every POST.
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


@dataclass(frozen=True)
class Session:
    key_id: str
    csrf: str
    expires: int


class SessionSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def new(self, key_id: str, now: float | None = None) -> tuple[Session, str]:
        session = Session(key_id, secrets.token_urlsafe(24), int((now or time.time()) + LIFETIME))
        return session, self.dump(session)

    def dump(self, session: Session) -> str:
        payload = base64.urlsafe_b64encode(
            orjson.dumps({"k": session.key_id, "c": session.csrf, "e": session.expires})
        ).decode()
        return f"{payload}.{self._sign(payload)}"

    def load(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(payload))
            session = Session(str(data["k"]), str(data["c"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < (now or time.time()):
            return None
        return session

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()


def csrf_valid(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented or "")
