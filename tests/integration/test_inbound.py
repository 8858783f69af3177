"""Inbound messages and the keyword engine on SQLite and PostgreSQL: STOP / START / HELP per
preset payload shape, replies through the delivery engine, double opt-in, replays."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from smsbridge.container import Services
from smsbridge.domain.signatures import twilio_signature
from tests.mock_provider import MockProvider, Reply

SENDER = "+15550001111"
PHONE = "+33612345678"

Hook = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
async def surface(client: httpx.AsyncClient, mock_provider: MockProvider) -> dict[str, Any]:
    mock_provider.reply(Reply(200, {"id": "prov-reply"}))
    credential = await client.post(
        "/api/v1/credentials",
        json={
            "name": "sandboxish",
            "preset": "sandbox",
            "provider_url": f"{mock_provider.url}/send",
            "auth": {"type": "none"},
        },
    )
    assert credential.status_code == 201, credential.text
    created = await client.post(
        "/api/v1/surfaces",
        json={"name": "alerts", "credential_id": credential.json()["id"], "sender": SENDER},
    )
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


def _path(url: str) -> str:
    return url[url.index("/hooks/") :]


@pytest.fixture
def mo(client: httpx.AsyncClient, surface: dict[str, Any]) -> Hook:
    counter = iter(range(1, 10_000))

    async def post(text: str, *, sender: str = PHONE, id: str | None = None) -> httpx.Response:
        body = {"from": sender, "to": SENDER, "text": text, "id": id or f"mo-{next(counter)}"}
        return await client.post(_path(surface["inbound_webhook_url"]), json=body)

    return post


async def _consent(client: httpx.AsyncClient, phone: str = PHONE) -> list[str]:
    view = (await client.get(f"/api/v1/consent/{phone}")).json()
    return [s["sender"] for s in view["opted_out_of"]]


@pytest.mark.parametrize(
    ("text", "outcome", "opted_out", "reply"),
    [
        ("STOP", "opt_outs", True, "opt_out"),
        ("  stop ", "opt_outs", True, "opt_out"),
        ("Stop!", "opt_outs", True, "opt_out"),
        ("unsubscribe", "opt_outs", True, "opt_out"),
        ("QUIT", "opt_outs", True, "opt_out"),
        ("please stop texting me", "stored", False, None),
        ("HELP", "help", False, "help"),
        ("info", "help", False, "help"),
        ("START", "opt_ins", False, "opt_in"),
        ("Hello there", "stored", False, None),
    ],
)
async def test_keyword_table(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    surface: dict[str, Any],
    mo: Hook,
    text: str,
    outcome: str,
    opted_out: bool,
    reply: str | None,
) -> None:
    response = await mo(text)
    assert response.status_code == 200, response.text
    assert response.json()[outcome] == 1
    assert (await _consent(client)) == ([SENDER] if opted_out else [])
    await services.new_worker().drain()
    sent = [json.loads(r.body) for r in mock_provider.requests]
    if reply is None:
        assert sent == []
    else:
        # The reply reaches the number even after its STOP (it answers it).
        assert [(m["to"], m["text"]) for m in sent] == [(PHONE, surface["replies"][reply])]


async def test_stop_then_start_and_sends_in_between(
    client: httpx.AsyncClient, services: Services, surface: dict[str, Any], mo: Hook
) -> None:
    await mo("STOP")
    blocked = await client.post(
        "/api/v1/messages", json={"surface_id": surface["id"], "to": PHONE, "body": "Sale"}
    )
    assert blocked.json()["status"] == "suppressed"
    history = (await client.get(f"/api/v1/consent/{PHONE}")).json()["history"]
    assert (history[0]["action"], history[0]["source"], history[0]["keyword"]) == (
        "opted_out",
        "keyword",
        "STOP",
    )
    await mo("start")
    assert await _consent(client) == []
    allowed = await client.post(
        "/api/v1/messages", json={"surface_id": surface["id"], "to": PHONE, "body": "Sale"}
    )
    assert allowed.json()["status"] == "queued"


async def test_double_opt_in_needs_yes(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    surface: dict[str, Any],
    mo: Hook,
) -> None:
    patched = await client.patch(
        f"/api/v1/surfaces/{surface['id']}",
        json={"double_opt_in": True, "replies": {"confirm_opt_in": "Sure? Reply YES."}},
    )
    assert patched.status_code == 200, patched.text
    await mo("STOP")
    asked = await mo("START")
    assert asked.json()["opt_in_requests"] == 1
    assert await _consent(client) == [SENDER]  # not yet
    other = await mo("YES", sender="+33612345699")  # no pending confirmation for this one
    assert other.json()["opt_ins"] == 1
    confirmed = await mo("yes")
    assert confirmed.json()["opt_ins"] == 1
    assert await _consent(client) == []
    await services.new_worker().drain()
    texts = [json.loads(r.body)["text"] for r in mock_provider.requests if PHONE in r.body.decode()]
    assert texts == [
        surface["replies"]["opt_out"],
        "Sure? Reply YES.",
        surface["replies"]["opt_in"],
    ]


async def test_replayed_inbound_has_one_effect(
    services: Services, mock_provider: MockProvider, mo: Hook
) -> None:
    first = await mo("STOP", id="SM-same")
    again = await mo("STOP", id="SM-same")
    assert first.json()["opt_outs"] == 1
    assert again.json() == {"received": 1, "replies": 0, "ignored": 0, "replays": 1}
    await services.new_worker().drain()
    assert len(mock_provider.requests) == 1


async def test_bad_inbound_bodies(client: httpx.AsyncClient, surface: dict[str, Any]) -> None:
    path = _path(surface["inbound_webhook_url"])
    bad = await client.post(path, content=b"{", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    nobody = await client.post(path, json={"text": "STOP"})
    assert nobody.status_code == 200
    assert nobody.json()["ignored"] == 1
    assert (await client.post("/hooks/inbound/nope", json={})).status_code == 404
    nul = await client.post(path, json={"from": PHONE, "to": SENDER, "text": "hi\u0000there"})
    assert nul.status_code == 200, nul.text  # PostgreSQL cannot store NUL: kept as U+FFFD
    report = await client.post(
        _path(surface["status_webhook_url"]), json={"id": "x\u0000y", "status": "delivered"}
    )
    assert report.status_code == 200 and report.json()["unknown"] == 1


PRESET_PAYLOADS: dict[str, tuple[str, Any]] = {
    # (how the provider posts, what it posts) — shapes from each provider's documentation
    "twilio": (
        "form",
        {"MessageSid": "SM1", "From": PHONE, "To": SENDER, "Body": "STOP", "AccountSid": "AC1"},
    ),
    "infobip": (
        "json",
        {
            "results": [
                {
                    "messageId": "ib-mo-1",
                    "from": PHONE.removeprefix("+"),
                    "to": SENDER.removeprefix("+"),
                    "text": "STOP",
                    "cleanText": "STOP",
                    "keyword": "STOP",
                    "receivedAt": "2026-03-01T12:00:00.000+0000",
                    "smsCount": 1,
                }
            ],
            "messageCount": 1,
            "pendingMessageCount": 0,
        },
    ),
    "sinch": (
        "json",
        {
            "type": "mo_text",
            "id": "01FC66621XXXXX119Z8PMV1QPQ",
            "from": PHONE.removeprefix("+"),
            "to": "12345",
            "body": "STOP",
            "received_at": "2026-03-01T12:00:00.000Z",
        },
    ),
    "vonage": (
        "form",
        {
            "msisdn": PHONE.removeprefix("+"),
            "to": SENDER.removeprefix("+"),
            "messageId": "0A0000000123ABCD1",
            "text": "STOP",
            "type": "text",
            "keyword": "STOP",
        },
    ),
    "plivo": (
        "json",
        {
            "From": PHONE.removeprefix("+"),
            "To": SENDER,
            "Text": "STOP",
            "MessageUUID": "pl-1",
            "Type": "sms",
        },
    ),
    "telnyx": (
        "json",
        {
            "data": {
                "event_type": "message.received",
                "id": "evt-1",
                "payload": {
                    "id": "tx-mo-1",
                    "direction": "inbound",
                    "from": {"phone_number": PHONE, "carrier": "Orange"},
                    "to": [{"phone_number": SENDER}],
                    "text": "STOP",
                    "type": "SMS",
                },
            }
        },
    ),
}


@pytest.mark.parametrize("preset", sorted(PRESET_PAYLOADS))
async def test_presets_read_their_providers_inbound_shapes(
    client: httpx.AsyncClient, mock_provider: MockProvider, preset: str
) -> None:
    document: dict[str, Any] = {
        "name": f"{preset}-mo",
        "preset": preset,
        "provider_url": f"{mock_provider.url}/send",
        "provider_app_id": "APP1",
        # Twilio's auth token also signs its webhooks; the others need no auth here.
        "auth": {"username": "AC1", "password": "tw-token-778899"}
        if preset == "twilio"
        else {"type": "none"},
    }
    credential = await client.post("/api/v1/credentials", json=document)
    assert credential.status_code == 201, credential.text
    surface = (
        await client.post(
            "/api/v1/surfaces",
            json={
                "name": f"{preset}-s",
                "credential_id": credential.json()["id"],
                "sender": SENDER,
            },
        )
    ).json()
    kind, payload = PRESET_PAYLOADS[preset]
    path = _path(surface["inbound_webhook_url"])
    headers = {}
    if preset == "twilio":
        url = surface["inbound_webhook_url"]
        headers["X-Twilio-Signature"] = twilio_signature("tw-token-778899", url, payload)
    response = (
        await client.post(path, data=payload, headers=headers)
        if kind == "form"
        else await client.post(path, json=payload)
    )
    assert response.status_code == 200, response.text
    assert response.json()["opt_outs"] == 1, response.json()
    assert await _consent(client) == [SENDER]


async def test_webhook_tokens_rotate(client: httpx.AsyncClient, surface: dict[str, Any]) -> None:
    rotated = await client.post(f"/api/v1/surfaces/{surface['id']}/rotate-webhook-tokens")
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()
    assert fresh["inbound_webhook_url"] != surface["inbound_webhook_url"]
    assert fresh["status_webhook_url"] != surface["status_webhook_url"]
    body = {"from": PHONE, "to": SENDER, "text": "HELP", "id": "r1"}
    old = await client.post(_path(surface["inbound_webhook_url"]), json=body)
    new = await client.post(_path(fresh["inbound_webhook_url"]), json=body)
    assert (old.status_code, new.status_code) == (404, 200)
    old_status = await client.post(_path(surface["status_webhook_url"]), json={})
    assert old_status.status_code == 404
    missing = await client.post("/api/v1/surfaces/srf_nope/rotate-webhook-tokens")
    assert missing.status_code == 404


async def test_concurrent_stops_share_transactions_and_each_is_in_force_when_answered(
    client: httpx.AsyncClient, services: Services, surface: dict[str, Any], mo: Hook
) -> None:
    """Many inbound webhooks at once are applied in few transactions, in arrival order; a
    STOP answered 2xx is in force: the next message to that number is suppressed."""
    before = services.inbound.group_stats()[0]
    phones = [f"+336123450{i:02d}" for i in range(40)]
    answers = await asyncio.gather(*(mo("STOP", sender=p) for p in phones))
    assert [a.status_code for a in answers] == [200] * len(phones)
    assert [a.json()["opt_outs"] for a in answers] == [1] * len(phones)
    groups, units = services.inbound.group_stats()
    assert units >= len(phones) and groups - before < len(phones) / 2
    for phone in phones:
        sent = await client.post(
            "/api/v1/messages", json={"surface_id": surface["id"], "to": phone, "body": "Sale"}
        )
        assert sent.json()["status"] == "suppressed", phone


async def _world(client: httpx.AsyncClient, mock_provider: MockProvider, tag: str) -> list[str]:
    """Two Infobip-preset surfaces (senders of their own): plain opt-in, and double opt-in.
    Their inbound paths, in that order."""
    credential = await client.post(
        "/api/v1/credentials",
        json={
            "name": f"infobip-{tag}",
            "preset": "infobip",
            "provider_url": f"{mock_provider.url}/sms/3/messages",
            "auth": {"token": "k" * 24},
        },
    )
    assert credential.status_code == 201, credential.text
    paths = []
    for index, double in enumerate((False, True)):
        created = await client.post(
            "/api/v1/surfaces",
            json={
                "name": f"w{tag}-{index}",
                "credential_id": credential.json()["id"],
                "sender": f"+1202555{tag}{index}00",
                "double_opt_in": double,
            },
        )
        assert created.status_code == 201, created.text
        paths.append(_path(created.json()["inbound_webhook_url"]))
    return paths


async def _state(services: Services, senders: dict[str, str], world: str) -> dict[str, Any]:
    """Consent state and trail, replies queued, inbound rows (provider ids ``world:…``):
    with each world's senders renamed to what they play (``senders``: real sender → role)."""
    from sqlalchemy import select

    from smsbridge.storage.tables import (
        consent_events,
        consent_pending,
        inbound_messages,
        messages,
        suppressions,
    )

    async with services.db.read() as conn:
        opted = await conn.execute(select(suppressions.c.sender, suppressions.c.phone))
        pending = await conn.execute(select(consent_pending.c.sender, consent_pending.c.phone))
        trail = await conn.execute(
            select(
                consent_events.c.sender, consent_events.c.phone, consent_events.c.action
            ).order_by(consent_events.c.id)
        )
        replies = await conn.execute(
            select(messages.c.from_number, messages.c.to_number, messages.c.body).order_by(
                messages.c.created_at, messages.c.id
            )
        )
        stored = await conn.execute(select(inbound_messages.c.provider_message_id))
        return {
            "opted_out": sorted((senders[s], p) for s, p in opted if s in senders),
            "pending": sorted((senders[s], p) for s, p in pending if s in senders),
            "trail": [(senders[s], p, a) for s, p, a in trail if s in senders],
            # (several replies share a clock reading in a group: compare them as a multiset)
            "replies": sorted((senders[s], t, b) for s, t, b in replies if s in senders),
            "stored": sorted(i[2:] for (i,) in stored if i.startswith(f"{world}:")),
        }


async def test_a_body_of_many_messages_acts_as_the_same_messages_one_by_one(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    """Differential check of the set-based apply: a random conversation (STOP, START, YES,
    HELP, chatter and replays, for a few numbers on two surfaces, one with double opt-in) is
    posted once message by message, each in a transaction of its own, and once in Infobip
    bodies of up to 60 messages (each body one group, its effects worked out in memory from
    the state read at its start); consent state, audit trail, replies and stored messages
    must come out the same."""
    import random

    rng = random.Random(20261202)
    phones = [f"+3361234{n:04d}" for n in range(6)]
    words = ["STOP", "start", "YES", "yes!", "HELP", "hello", "Stop", "UNSUBSCRIBE", "subscribe"]
    chunks: list[tuple[int, list[tuple[str, str, str]]]] = []
    used: list[list[str]] = [[], []]
    serial = 0
    for _ in range(24):
        surface = rng.randrange(2)
        chunk = []
        for _ in range(rng.randint(1, 60)):
            if used[surface] and rng.random() < 0.06:
                message_id = rng.choice(used[surface])  # a replay
            else:
                serial += 1
                message_id = f"{surface}-{serial}"
                used[surface].append(message_id)
            chunk.append((rng.choice(phones), rng.choice(words), message_id))
        chunks.append((surface, chunk))

    def body(items: list[tuple[str, str, str]], world: str) -> dict[str, Any]:
        return {
            "results": [
                # (Infobip sends numbers without "+")
                {"from": p.lstrip("+"), "to": "x", "text": t, "messageId": f"{world}:{i}"}
                for p, t, i in items
            ]
        }

    one = await _world(client, mock_provider, "1")
    many = await _world(client, mock_provider, "2")
    one_totals, many_totals = Counter(), Counter()
    for position, (surface, chunk) in enumerate(chunks):
        for item in chunk:
            answer = await client.post(one[surface], json=body([item], "a"))
            assert answer.status_code == 200, answer.text
            one_totals.update(answer.json())
        if position < 4:  # the first ones one by one too: state from before the bodies
            for item in chunk:
                answer = await client.post(many[surface], json=body([item], "b"))
                many_totals.update(answer.json())
        else:
            answer = await client.post(many[surface], json=body(chunk, "b"))
            assert answer.status_code == 200, answer.text
            many_totals.update(answer.json())
    assert one_totals == many_totals
    assert one_totals["replays"] > 0 and one_totals["opt_in_requests"] > 0
    first = await _state(services, {"+12025551000": "plain", "+12025551100": "double"}, "a")
    second = await _state(services, {"+12025552000": "plain", "+12025552100": "double"}, "b")
    assert first == second
    assert first["opted_out"] and first["pending"] and len(first["trail"]) > 50
