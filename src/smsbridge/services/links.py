"""Following short links: one lookup, one click recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from smsbridge.domain.links import is_bot, is_code
from smsbridge.services.secretbox import SecretBox
from smsbridge.storage import links as repo
from smsbridge.storage.database import Database

MAX_USER_AGENT = 512


class LinkService:
    def __init__(self, db: Database, box: SecretBox, *, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._box = box
        self._clock = clock

    async def follow(
        self, code: str, *, user_agent: str | None, client_ip: str | None
    ) -> str | None:
        """The original URL of ``code`` (the click recorded, flagged when a bot made it), or
        None when there is no such link. Only the stored URL is ever returned."""
        if not is_code(code):
            return None
        click = repo.Click(
            at=self._clock(),
            user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
            ip_hash=self._box.fingerprint(client_ip) if client_ip else None,
            is_bot=is_bot(user_agent),
        )
        return await repo.follow(self._db, code, click)
