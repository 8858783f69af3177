"""The audience the admin counts before launch is the one the fan-out messages, on SQLite and
PostgreSQL: for each kind of audience, the recipients counted equal the messages the launched
campaign targets, and the left-out profiles equal its exclusions by reason."""

from __future__ import annotations

from typing import Any

import pytest

from smsbridge.container import Services
from smsbridge.domain.campaigns import parse_audience
from smsbridge.domain.personalize import Personalizer
from smsbridge.services.audience import AudienceService
from smsbridge.services.consent import ConsentStatus
from smsbridge.services.fanout import FanOut

PEOPLE = [
    ("a1", "+33612345601", {"country": "FR", "tier": "gold"}),
    ("a2", "+33612345602", {"country": "FR", "tier": "silver"}),
    ("a3", "+33612345603", {"country": "FR", "tier": "gold"}),  # opted out of Acme
    ("a4", "+33612345601", {"country": "FR", "tier": "gold"}),  # a1's number
    ("b1", "+32470123451", {"country": "BE", "tier": "gold"}),
    ("b2", "+32470123452", {"country": "BE", "vip": True}),  # a JSON true, not "true"
    ("b3", "+33612345603", {"country": "BE"}),  # a3's number: opted out too
]
AUDIENCES: list[dict[str, Any]] = [
    {"all": True},
    {"filter": {"attributes.country": "FR"}},
    {"filter": {"attributes.country": ["FR", "BE"], "attributes.tier": "gold"}},
    {"filter": {"attributes.vip": "true"}},  # compared as JSON values: nobody
    {"filter": {"attributes.vip": True}},
    {"profile_ids": ["b2", "a4", "nobody", "a1", "a3"]},
]


async def _world(services: Services) -> str:
    credential = await services.credentials.create(
        {
            "name": "gw",
            "provider_url": "http://127.0.0.1:9/sms",
            "auth": {"type": "none"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        }
    )
    surface = await services.surfaces.create(
        {"name": "promo", "credential_id": credential.id, "sender": "Acme"}
    )
    for external_id, phone, attributes in PEOPLE:
        await services.profiles.put(external_id, {"phone": phone, "attributes": attributes})
    await services.consent.change(
        "+33612345603", sender="Acme", status=ConsentStatus.OPTED_OUT, source="admin", actor="t"
    )
    # another sender's opt-out leaves Acme's audience alone
    await services.consent.change(
        "+33612345602", sender="Other", status=ConsentStatus.OPTED_OUT, source="admin", actor="t"
    )
    return str(surface.id)


@pytest.mark.parametrize("document", AUDIENCES, ids=lambda d: str(d))
async def test_the_counted_audience_is_the_one_the_fan_out_messages(
    services: Services, document: dict[str, Any]
) -> None:
    surface_id = await _world(services)
    audience = parse_audience(document)
    lookup = AudienceService(services.db)
    size = await lookup.size(audience, "Acme")

    campaign = await services.campaigns.create(
        {"name": "c", "surface_id": surface_id, "body": "Hi", "audience": document}
    )
    await services.campaigns.launch(campaign["id"])
    fanout = FanOut(services.db, clock=services.clock, personalizer=Personalizer(), batch_size=2)
    await fanout.run(campaign["id"])  # batches of 2: the duplicate check spans batches
    done = await services.campaigns.get(campaign["id"])

    assert done["fanout_done"]
    assert size.recipients == done["counts"]["targeted"]
    reasons = done["excluded_reasons"]
    assert size.opted_out == reasons.get("opted_out", 0)
    assert size.shared == reasons.get("duplicate", 0)
    assert size.missing == reasons.get("unknown_profile", 0)
    assert size.profiles == size.recipients + size.opted_out + size.shared
    assert done["counts"]["excluded"] == size.opted_out + size.shared + size.missing

    # the sample is the fan-out's first profile: the first listed, or the first by id
    sample = await lookup.sample(audience)
    if "profile_ids" in document:
        assert sample == "b2"
    else:
        matching = sorted(p for p, _, attributes in PEOPLE if _matches(attributes, document))
        assert sample == (matching[0] if matching else None)
        assert size.profiles == len(matching)


def _matches(attributes: dict[str, Any], document: dict[str, Any]) -> bool:
    for key, wanted in document.get("filter", {}).items():
        values = wanted if isinstance(wanted, list) else [wanted]
        value = attributes.get(key.removeprefix("attributes."), object())
        if not any(type(value) is type(v) and value == v for v in values):
            return False
    return True


async def test_without_a_sender_nothing_counts_as_opted_out(services: Services) -> None:
    await _world(services)
    size = await AudienceService(services.db).size(parse_audience({"all": True}), None)
    assert (size.profiles, size.opted_out, size.missing) == (7, 0, 0)
    assert size.recipients == 5  # distinct numbers
    assert size.shared == 2
