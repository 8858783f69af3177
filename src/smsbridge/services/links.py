"""Following short links: one lookup, one click recorded.

Guessing codes is slowed per client (:class:`smsbridge.domain.links.MissLimiter`: a client
over its budget of unknown codes gets 429 without a database lookup), and a surface may give
its links a lifetime (``link_tracking.expire_after_days``), after which they answer 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from smsbridge.domain.links import MissLimiter, is_bot, is_code
from smsbridge.services.secretbox import SecretBox
from smsbridge.storage import links as repo
from smsbridge.storage.database import Database

MAX_USER_AGENT = 512
LIFETIMES_TTL = 30.0
"""Seconds a change to a surface's link lifetime may take to apply to redirects."""


@dataclass(frozen=True)
class Followed:
    """What following a code gave: the URL, or nothing (``retry_after`` set when the client
    is over its budget of misses)."""

    url: str | None
    retry_after: float | None = None


class LinkService:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        clock: Callable[[], datetime],
        misses_per_minute: int = 30,
    ) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._misses = MissLimiter(misses_per_minute)
        self._lifetimes: dict[str, timedelta] = {}
        self._lifetimes_read = float("-inf")

    async def follow(self, code: str, *, user_agent: str | None, client_ip: str | None) -> Followed:
        """The original URL of ``code`` (the click recorded, flagged when a bot made it), or
        none when there is no such link (or it expired). Only the stored URL is returned."""
        client = client_ip or "unknown"
        at = self._clock()
        now = at.timestamp()
        wait = self._misses.blocked(client, now)
        if wait is not None:
            return Followed(None, retry_after=wait)
        url = None
        if is_code(code):
            click = repo.Click(
                at=at,
                user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
                ip_hash=self._box.fingerprint(client_ip) if client_ip else None,
                is_bot=is_bot(user_agent),
            )
            url = await repo.follow(self._db, code, click, await self._link_lifetimes(now))
        if url is None:
            self._misses.missed(client, now)
        return Followed(url)

    async def _link_lifetimes(self, now: float) -> dict[str, timedelta]:
        if now - self._lifetimes_read >= LIFETIMES_TTL:
            self._lifetimes = await repo.link_lifetimes(self._db)
            self._lifetimes_read = now
        return self._lifetimes
