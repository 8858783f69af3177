"""API keys and roles: who may call what; the admin sessions opened with them.

An admin session is a row (named by the SHA-256 of a random id the cookie carries) bound to
the key that opened it: signing out deletes the row, revoking the key ends it, and the web
layer also binds the cookie to :attr:`Principal.key_hash`, so a new master key value (whose
id stays ``master``) ends the sessions the old value opened.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from smsbridge.domain.ids import new_id
from smsbridge.errors import AuthenticationRequired, InvalidInput, NotFound, PermissionDenied
from smsbridge.storage import admin_sessions
from smsbridge.storage import api_keys as repo
from smsbridge.storage.database import Database


class Role(StrEnum):
    ADMIN = "admin"
    SENDER = "sender"
    VIEWER = "viewer"


_RANK = {Role.VIEWER: 0, Role.SENDER: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: Role
    key_hash: str = field(default="", repr=False, compare=False)
    """SHA-256 of the key itself: what sessions are bound to (the master key's id never
    changes, its value may)."""

    def require(self, role: Role) -> None:
        """Raise :class:`PermissionDenied` unless this key's role includes ``role``."""
        if _RANK[self.role] < _RANK[role]:
            raise PermissionDenied(f"this operation needs the {role} role; this key is {self.role}")


@dataclass(frozen=True)
class CreatedKey:
    id: str
    name: str
    role: Role
    key: str


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(key.encode()).hexdigest()


KEY_CACHE_SECONDS = 2.0
"""How long a valid key is trusted without reading it again. A key revoked by this process
stops at once; one revoked by another process sharing the database, within this time."""
KEY_CACHE_SIZE = 1024


class ApiKeyService:
    def __init__(self, db: Database, master_key: str, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._master = master_key
        self._master_hash = hash_key(master_key)
        self._clock = clock
        # key hash -> (principal, monotonic time it was read): a sender sending thousands of
        # messages a second does not read its key thousands of times a second
        self._valid: dict[str, tuple[Principal, float]] = {}

    async def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise AuthenticationRequired()
        if hmac.compare_digest(presented.encode(), self._master.encode()):
            return Principal("master", "master", Role.ADMIN, self._master_hash)
        digest = hash_key(presented)
        cached = self._valid.get(digest)
        now = time.monotonic()
        if cached is not None and now - cached[1] < KEY_CACHE_SECONDS:
            return cached[0]
        async with self._db.read() as conn:
            row = await repo.find_by_hash(conn, digest)
        if row is None or row.revoked_at is not None:
            self._valid.pop(digest, None)
            raise AuthenticationRequired("invalid or revoked API key")
        found = Principal(row.id, row.name, Role(row.role), row.key_hash)
        if len(self._valid) >= KEY_CACHE_SIZE:
            self._valid.clear()
        self._valid[digest] = (found, now)
        return found

    async def principal(self, key_id: str) -> Principal:
        """The key with this id, if it is still valid (a signed-in session re-checks it on
        every request, so revoking a key ends its sessions)."""
        if key_id == "master":
            return Principal("master", "master", Role.ADMIN, self._master_hash)
        async with self._db.read() as conn:
            row = await repo.get_key(conn, key_id)
        if row is None or row.revoked_at is not None:
            raise AuthenticationRequired("invalid or revoked API key")
        return Principal(row.id, row.name, Role(row.role), row.key_hash)

    async def open_session(self, who: Principal, lifetime: timedelta) -> str:
        """A new admin session for ``who``; returns its random id (for the cookie only: the
        database keeps its hash). Expired sessions are swept on the way."""
        session_id = secrets.token_urlsafe(24)
        now = self._clock()
        async with self._db.transaction() as conn:
            await admin_sessions.sweep_expired(conn, now)
            await admin_sessions.open_session(
                conn, hash_key(session_id), who.key_id, now, now + lifetime
            )
        return session_id

    async def session_principal(self, session_id: str) -> Principal:
        """The key of this open admin session, if both are still valid."""
        async with self._db.read() as conn:
            key_id = await admin_sessions.session_key(conn, hash_key(session_id), self._clock())
        if key_id is None:
            raise AuthenticationRequired("this session has ended; sign in again")
        return await self.principal(key_id)

    async def close_session(self, session_id: str) -> None:
        """End this admin session at once (sign-out): its cookie, even copied, opens nothing."""
        async with self._db.transaction() as conn:
            await admin_sessions.close_session(conn, hash_key(session_id))

    async def create(self, name: str, role: str) -> CreatedKey:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput.one("name", "must be 1 to 100 characters")
        try:
            parsed_role = Role(role)
        except ValueError:
            raise InvalidInput.one("role", "must be admin, sender or viewer") from None
        key = f"sbk_{parsed_role.value}_" + secrets.token_urlsafe(32)
        row = repo.ApiKeyRow(
            id=new_id("key"),
            name=name,
            role=parsed_role.value,
            key_hash=hash_key(key),
            prefix=key[:12],
            created_at=self._clock(),
            revoked_at=None,
        )
        async with self._db.transaction() as conn:
            await repo.insert_key(conn, row)
        return CreatedKey(row.id, name, parsed_role, key)

    async def list(self) -> list[repo.ApiKeyRow]:
        async with self._db.read() as conn:
            return await repo.list_keys(conn)

    async def revoke(self, key_id: str) -> None:
        async with self._db.transaction() as conn:
            if not await repo.revoke(conn, key_id, self._clock()):
                raise NotFound(f"no active API key {key_id}")
        self._valid.clear()  # after the commit: no read from before it can be cached again
