"""The event tailer follows logs by id without skipping rows that PostgreSQL commits late (an
id handed out before a larger one that commits first)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from smsbridge.container import Services
from smsbridge.storage.event_tables import event_deliveries
from smsbridge.storage.tables import consent_events


def _consent(phone: str) -> dict[str, object]:
    return {
        "phone": phone,
        "sender": "+15550001111",
        "action": "opted_out",
        "source": "api",
        "at": datetime.now(UTC),
    }


async def _delivered_phones(services: Services) -> list[str]:
    async with services.db.read() as conn:
        rows = await conn.execute(select(event_deliveries.c.body).order_by(event_deliveries.c.id))
        return [json.loads(r[0])["data"]["phone"] for r in rows]


async def test_a_late_commit_below_the_cursor_is_not_skipped(services: Services) -> None:
    if services.db.dialect != "postgresql":
        pytest.skip("SQLite commits one writer at a time, in id order")
    await services.events.create({"url": "https://hooks.example.test/in", "event_types": ["*"]})
    dispatcher = services.new_event_dispatcher()
    await dispatcher.tail_once()
    engine = services.db.engine
    async with engine.connect() as slow:
        transaction = await slow.begin()
        await slow.execute(insert(consent_events).values(**_consent("+33600000001")))  # id n
        async with services.db.transaction() as fast:  # id n+1, committed first
            await fast.execute(insert(consent_events).values(**_consent("+33600000002")))
        await dispatcher.tail_once()
        assert await _delivered_phones(services) == ["+33600000002"]
        await transaction.commit()
    await dispatcher.tail_once()
    assert await _delivered_phones(services) == ["+33600000002", "+33600000001"]
    await dispatcher.tail_once()  # the gap is closed: nothing twice
    assert len(await _delivered_phones(services)) == 2
    async with services.db.read() as conn:
        total = (await conn.execute(select(func.count()).select_from(consent_events))).scalar_one()
    assert total == 2
