"""A campaign audience before launch: how many it reaches, and a sample recipient.

The profiles are selected as the fan-out selects them (:mod:`smsbridge.services.fanout`):
``all`` and ``filter`` audiences through the same query narrowing, ``profile_ids`` in the
order given. The number of recipients is the fan-out's, before what only sending can tell
(a surface's frequency cap, a message that fails to render for one profile).
"""

from __future__ import annotations

from dataclasses import dataclass

from smsbridge.domain.campaigns import Audience
from smsbridge.storage import profiles as profiles_repo
from smsbridge.storage.audience import audience_counts
from smsbridge.storage.database import Database

SAMPLE_IDS = 500
"""Listed ids looked at for a sample (the first of them that is a profile)."""


@dataclass(frozen=True)
class AudienceSize:
    profiles: int
    """Profiles the audience selects."""
    opted_out: int
    """Of them, profiles whose number opted out of the campaign's sender: excluded."""
    shared: int
    """Profiles excluded because another profile of the audience has the same number."""
    missing: int
    """Listed profile ids that are no profile (``profile_ids`` audiences): excluded."""
    recipients: int
    """Numbers that will get the message."""
    sender: str | None


class AudienceService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def size(self, audience: Audience, sender: str | None) -> AudienceSize:
        """The audience counted now, for a campaign from ``sender`` (None: opt-outs unknown)."""
        async with self._db.read() as conn:
            counts = await audience_counts(conn, audience, sender)
        listed = len(set(audience.profile_ids)) if audience.profile_ids is not None else 0
        return AudienceSize(
            profiles=counts.profiles,
            opted_out=counts.opted_out,
            shared=counts.profiles - counts.opted_out - counts.numbers,
            missing=max(listed - counts.profiles, 0),
            recipients=counts.numbers,
            sender=sender,
        )

    async def sample(self, audience: Audience) -> str | None:
        """The external id of the audience's first profile (the fan-out's first), if any."""
        async with self._db.read() as conn:
            if audience.profile_ids is None:
                rows = await profiles_repo.audience_batch(conn, audience, after=None, limit=1)
                return rows[0][0] if rows else None
            ids = audience.profile_ids[:SAMPLE_IDS]
            found = await profiles_repo.profiles_by_id(conn, ids)
        return next((i for i in ids if i in found), None)
