"""Accepting messages in groups, on SQLite and PostgreSQL: ``POST /api/v1/messages/batch``
(per-item results in order, one Idempotency-Key for the batch) and the group commit behind
``POST /api/v1/messages`` (concurrent requests share transactions, each answered as alone).
No worker runs here: messages are only enqueued."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from smsbridge.container import Services
from smsbridge.storage.tables import idempotency_keys, links, messages, outbox
from tests.conftest import CredentialFactory

SENDER = "+15550001111"
TO = "+33612345678"


@pytest.fixture
async def surface(client: httpx.AsyncClient, make_credential: CredentialFactory) -> str:
    credential = await make_credential()
    response = await client.post(
        "/api/v1/surfaces",
        json={
            "name": "alerts",
            "sender": SENDER,
            "credential_id": credential["id"],
            "link_tracking": {"enabled": True},
        },
    )
    assert response.status_code == 201, response.text
    surface_id: str = response.json()["id"]
    return surface_id


async def _rows(services: Services) -> dict[str, Any]:
    async with services.db.read() as conn:
        ids = [r[0] for r in await conn.execute(select(messages.c.id))]
        entries = [r[0] for r in await conn.execute(select(outbox.c.message_id))]
        link_count = (await conn.execute(select(func.count()).select_from(links))).scalar_one()
    return {"ids": ids, "outbox": entries, "links": link_count}


def _batch(surface: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"surface_id": surface, "to": TO, "body": "Hi", **i} for i in items]}


async def test_a_batch_answers_each_message_in_its_place(
    client: httpx.AsyncClient, services: Services, surface: str
) -> None:
    opted_out = "+33612345679"
    response = await client.put(
        f"/api/v1/consent/{opted_out}", json={"sender": SENDER, "status": "opted_out"}
    )
    assert response.status_code == 200, response.text
    body = _batch(
        surface,
        {"body": "Sale: https://acme.example/sale"},
        {"to": "not a number"},
        {"surface_id": "srf_missing"},
        {"to": opted_out},
        {"color": "red"},
        {"to": "+14155550100", "send_at": "2999-01-01T00:00:00Z"},
        {"body": "A\u0000B"},
        {"variables": {"name\u0000": "Ana"}},
    )
    response = await client.post("/api/v1/messages/batch", json=body)
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert [r["status"] for r in results] == [202, 422, 422, 202, 422, 202, 422, 422]
    nul = [[e["field"] for e in r["problem"]["errors"]] for r in results[6:]]
    assert nul == [["messages[6].body"], ["messages[7].variables"]]
    assert [r["message"]["status"] for r in results if r["status"] == 202] == [
        "queued",
        "suppressed",
        "scheduled",
    ]
    fields = {r["index"]: [e["field"] for e in r["problem"]["errors"]] for r in results[1:3]}
    assert fields == {1: ["messages[1].to"], 2: ["messages[2].surface_id"]}
    assert [e["field"] for e in results[4]["problem"]["errors"]] == ["messages[4].color"]
    assert all(r["problem"]["status"] == 422 for r in results if r["status"] == 422)
    accepted = [r["message"]["id"] for r in results if r["status"] == 202]
    assert len(set(accepted)) == 3
    # what was answered 202 is stored, once; the suppressed one has no outbox entry
    rows = await _rows(services)
    assert sorted(rows["ids"]) == sorted(accepted)
    assert sorted(rows["outbox"]) == sorted([accepted[0], accepted[2]])
    assert rows["links"] == 1
    assert results[0]["message"]["body"].startswith("Sale: https://sms.example.test/l/")
    assert "acme.example" not in results[0]["message"]["body"]  # shortened
    for result in results:  # the 202 view is what reading the message back gives
        if result["status"] == 202:
            got = await client.get(f"/api/v1/messages/{result['message']['id']}")
            assert got.json() == result["message"]


async def test_a_batch_of_a_thousand_is_one_request_and_more_is_refused(
    client: httpx.AsyncClient, services: Services, surface: str
) -> None:
    thousand = {
        "messages": [
            {"surface_id": surface, "to": f"+3361234{i:04d}", "body": f"code {i}"}
            for i in range(1000)
        ]
    }
    response = await client.post("/api/v1/messages/batch", json=thousand)
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [202] * 1000
    assert [r["message"]["to"] for r in results] == [f"+3361234{i:04d}" for i in range(1000)]
    assert len((await _rows(services))["ids"]) == 1000
    over = {"messages": thousand["messages"] + thousand["messages"][:1]}
    response = await client.post("/api/v1/messages/batch", json=over)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["messages"]
    empty = await client.post("/api/v1/messages/batch", json={"messages": []})
    assert empty.status_code == 422
    assert len((await _rows(services))["ids"]) == 1000


async def test_a_nul_in_a_message_refuses_that_message_and_its_answer_can_be_stored(
    client: httpx.AsyncClient, services: Services, surface: str
) -> None:
    """Each message of a batch is checked for NUL on its own; the answer names an unknown
    key holding one with the NUL escaped, so the batch's Idempotency-Key record (PostgreSQL's
    JSON refuses U+0000) stores it and a replay answers the same."""
    body = _batch(surface, {}, {"col\u0000or": "red"}, {"body": "\u0000"})
    headers = {"Idempotency-Key": "nul-batch"}
    first = await client.post("/api/v1/messages/batch", json=body, headers=headers)
    assert first.status_code == 207, first.text
    results = first.json()["results"]
    assert [r["status"] for r in results] == [202, 422, 422]
    fields = [[e["field"] for e in r["problem"]["errors"]] for r in results[1:]]
    assert fields == [["messages[1].col\\u0000or"], ["messages[2].body"]]
    again = await client.post("/api/v1/messages/batch", json=body, headers=headers)
    assert again.status_code == 207 and again.json() == first.json()
    assert len((await _rows(services))["ids"]) == 1


async def test_text_that_is_not_valid_unicode_is_refused_in_its_place(
    client: httpx.AsyncClient, services: Services, surface: str
) -> None:
    """JSON may escape a lone UTF-16 surrogate ("\\ud800"): no database or JSON encoder can
    write one. It is refused as the field at fault — in a batch, in its place (a key holding
    one is named escaped) — never answered 500 after the rest was stored."""
    items = [
        {"surface_id": surface, "to": TO, "body": "Hi"},
        {"surface_id": surface, "to": TO, "body": "a\ud800b"},
        {"surface_id": surface, "to": TO, "body": "Hi", "variables": {"k": ["\udfff"]}},
        {"surface_id": surface, "to": TO, "body": "Hi", "x\ud800": 1},
    ]
    raw = ('{"messages": [' + ", ".join(json.dumps(i) for i in items) + "]}").encode()
    assert b"\\ud800" in raw  # the escape itself goes over the wire
    headers = {"Content-Type": "application/json", "Idempotency-Key": "surrogates"}
    response = await client.post("/api/v1/messages/batch", content=raw, headers=headers)
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [202, 422, 422, 422]
    fields = [[e["field"] for e in r["problem"]["errors"]] for r in results[1:]]
    # pydantic refuses the key itself before any field: the message as a whole is named
    assert fields == [["messages[1].body"], ["messages[2].variables"], ["messages[3]"]]
    assert "valid Unicode" in results[1]["problem"]["errors"][0]["message"]
    assert len((await _rows(services))["ids"]) == 1
    single = json.dumps(items[1]).encode()
    answered = await client.post(
        "/api/v1/messages", content=single, headers={"Content-Type": "application/json"}
    )
    assert answered.status_code == 422, answered.text
    assert [e["field"] for e in answered.json()["errors"]] == ["body"]


async def test_one_idempotency_key_covers_the_batch(
    client: httpx.AsyncClient, services: Services, surface: str
) -> None:
    body = _batch(surface, {}, {"to": "nope"}, {"to": "+14155550100"})
    headers = {"Idempotency-Key": "batch-1"}
    first = await client.post("/api/v1/messages/batch", json=body, headers=headers)
    again = await client.post("/api/v1/messages/batch", json=body, headers=headers)
    assert first.status_code == again.status_code == 207
    assert again.json() == first.json()
    assert len((await _rows(services))["ids"]) == 2
    other = await client.post("/api/v1/messages/batch", json=_batch(surface, {}), headers=headers)
    assert other.status_code == 422
    assert [e["field"] for e in other.json()["errors"]] == ["Idempotency-Key"]
    # the single-message endpoint has its own keys
    single = await client.post(
        "/api/v1/messages", json={"surface_id": surface, "to": TO, "body": "Hi"}, headers=headers
    )
    assert single.status_code == 202
    async with services.db.read() as conn:
        records = (await conn.execute(select(func.count()).select_from(idempotency_keys))).scalar()
    assert records == 2


async def test_concurrent_sends_share_transactions_and_each_gets_its_own_answer(
    client: httpx.AsyncClient, services: Services, surface: str
) -> None:
    groups_before = services.messages.group_stats()[0]
    count = 60
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/messages",
                json={"surface_id": surface, "to": f"+3361200{i:04d}", "body": f"n{i}"},
            )
            for i in range(count)
        )
    )
    assert [r.status_code for r in responses] == [202] * count
    views = [r.json() for r in responses]
    assert [v["to"] for v in views] == [f"+3361200{i:04d}" for i in range(count)]
    assert [v["body"] for v in views] == [f"n{i}" for i in range(count)]
    assert sorted((await _rows(services))["ids"]) == sorted(v["id"] for v in views)
    groups, units = services.messages.group_stats()
    assert units >= count
    # the requests arrived together: far fewer transactions than requests
    assert groups - groups_before < count / 2


async def test_concurrent_twins_with_one_idempotency_key_accept_one_message(
    client: httpx.AsyncClient, services: Services, surface: str
) -> None:
    body = {"surface_id": surface, "to": TO, "body": "Your code is 1234"}
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "otp-1"})
            for _ in range(12)
        )
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len((await _rows(services))["ids"]) == 1


async def test_a_frequency_cap_counts_the_messages_of_the_same_group(
    client: httpx.AsyncClient, services: Services, make_credential: CredentialFactory
) -> None:
    credential = await make_credential()
    response = await client.post(
        "/api/v1/surfaces",
        json={
            "name": "promo",
            "sender": SENDER,
            "credential_id": credential["id"],
            "message_type": "marketing",
            "frequency_cap": {"max_messages": 2, "window_hours": 24},
        },
    )
    assert response.status_code == 201, response.text
    promo = response.json()["id"]
    body = _batch(promo, {}, {}, {}, {"to": "+14155550100"})
    results = (await client.post("/api/v1/messages/batch", json=body)).json()["results"]
    assert [r["message"]["status"] for r in results] == [
        "queued",
        "queued",
        "suppressed",
        "queued",
    ]
    assert results[2]["message"]["last_error"].startswith("frequency_cap: 2 marketing")
    # and the next request counts what that batch accepted
    again = await client.post(
        "/api/v1/messages", json={"surface_id": promo, "to": "+14155550100", "body": "Hi"}
    )
    assert again.json()["status"] == "queued"
    third = await client.post(
        "/api/v1/messages", json={"surface_id": promo, "to": "+14155550100", "body": "Hi"}
    )
    assert third.json()["status"] == "suppressed"
