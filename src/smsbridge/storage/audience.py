"""How big a campaign audience is, counted in the database (the admin's campaign form and its
launch confirmation). The profiles counted are those the fan-out streams: the same
``audience_where`` narrows both queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.campaigns import Audience
from smsbridge.storage.dialects import dialect_of
from smsbridge.storage.profiles import audience_where
from smsbridge.storage.tables import profiles, suppressions


@dataclass(frozen=True)
class AudienceCounts:
    profiles: int
    """Profiles the audience selects."""
    opted_out: int
    """Of them, those whose number opted out of the sender."""
    numbers: int
    """Distinct numbers among the profiles not opted out: the fan-out messages a number once
    (the other profiles sharing it are excluded as duplicates)."""


async def audience_counts(
    conn: AsyncConnection, audience: Audience, sender: str | None
) -> AudienceCounts:
    """The counts of ``audience`` for a campaign from ``sender`` (None: no opt-out applies)."""
    if sender is None:
        source: Any = profiles
        opted_out: Any = literal(False)
    else:
        # (sender, phone) is the key of suppressions: at most one row joins each profile
        source = profiles.outerjoin(
            suppressions,
            and_(suppressions.c.phone == profiles.c.phone, suppressions.c.sender == sender),
        )
        opted_out = suppressions.c.phone.is_not(None)
    query = select(
        func.count(),
        func.coalesce(func.sum(case((opted_out, 1), else_=0)), 0),
        func.count(func.distinct(case((opted_out, None), else_=profiles.c.phone))),
    ).select_from(source)
    if audience.profile_ids is not None:
        ids = sorted(set(audience.profile_ids))
        query = query.where(dialect_of(conn).among(profiles.c.external_id, ids))
    else:
        query = audience_where(conn, query, audience)
    found, out, numbers = (await conn.execute(query)).one()
    return AudienceCounts(int(found), int(out), int(numbers))
