"""Accepting messages over the HTTP API, on SQLite and PostgreSQL: segments, scheduling,
idempotency, cancelling, listing and roles. No worker runs here: messages are only enqueued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from smsbridge.container import Services
from smsbridge.storage.tables import idempotency_keys, messages, outbox
from tests.conftest import CredentialFactory

SENDER = "+15550001111"
TO = "+33612345678"

SurfaceFactory = Callable[..., Awaitable[dict[str, Any]]]
Send = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def make_surface(client: httpx.AsyncClient, make_credential: CredentialFactory) -> SurfaceFactory:
    counter = iter(range(1, 10_000))

    async def make(**overrides: Any) -> dict[str, Any]:
        document: dict[str, Any] = {"name": f"surface-{next(counter)}", "sender": SENDER}
        document.update(overrides)
        if "credential_id" not in document:
            document["credential_id"] = (await make_credential())["id"]
        response = await client.post("/api/v1/surfaces", json=document)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make


@pytest.fixture
async def surface(make_surface: SurfaceFactory) -> dict[str, Any]:
    return await make_surface()


@pytest.fixture
def send(client: httpx.AsyncClient, surface: dict[str, Any]) -> Send:
    """POST /api/v1/messages on ``surface`` to ``TO`` unless the fields say otherwise."""

    async def post(headers: dict[str, str] | None = None, **fields: Any) -> httpx.Response:
        document: dict[str, Any] = {"surface_id": surface["id"], "to": TO, "body": "Hi", **fields}
        document = {k: v for k, v in document.items() if v is not None}
        return await client.post("/api/v1/messages", json=document, headers=headers or {})

    return post


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail", "errors"}
    assert problem["status"] == response.status_code
    return [e["field"] for e in problem["errors"]]


def _accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    message: dict[str, Any] = response.json()
    return message


async def _list(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/messages", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _count(services: Services, table: Any) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _key(services: Services, role: str) -> dict[str, str]:
    created = await services.api_keys.create(f"{role} key", role)
    return {"Authorization": f"Bearer {created.key}"}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- accepting -------------------------------------------------------------------------------


async def test_a_message_is_queued_with_its_sender_and_e164_number(
    client: httpx.AsyncClient, send: Send, surface: dict[str, Any], services: Services
) -> None:
    before = datetime.now(UTC)
    message = _accepted(await send(to="+33 6 12 34 56 78", body="Hello Ana"))
    assert message["id"].startswith("msg_")
    assert len(message["id"]) > len("msg_")
    assert message["status"] == "queued"
    assert message["surface_id"] == surface["id"]
    assert message["campaign_id"] is None
    assert message["to"] == "+33612345678"
    assert message["from"] == SENDER
    assert message["body"] == "Hello Ana"
    assert message["segments"] == 1
    assert message["encoding"] == "GSM-7"
    assert message["message_type"] == surface["message_type"]
    assert message["attempts"] == 0
    assert message["provider_message_id"] is None
    assert message["last_error"] is None
    assert message["sent_at"] is None
    assert message["delivered_at"] is None
    assert before - timedelta(seconds=1) <= _at(message["created_at"]) <= datetime.now(UTC)
    assert [e["type"] for e in message["events"]] == ["queued"]

    got = await client.get(f"/api/v1/messages/{message['id']}")
    assert got.status_code == 200, got.text
    shown = got.json()
    assert [(e["type"], e["detail"]) for e in shown["events"]] == [("queued", None)]
    assert _at(shown["events"][0]["at"]) == _at(message["created_at"])
    for field in ("id", "status", "to", "from", "body", "segments", "encoding", "surface_id"):
        assert shown[field] == message[field], field
    assert _at(shown["created_at"]) == _at(message["created_at"])
    # accepted means committed with its outbox entry, ready for a worker
    assert await _count(services, outbox) == 1


async def test_the_sender_follows_the_surface(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    alpha = await make_surface(sender="ACME", message_type="marketing")
    response = await client.post(
        "/api/v1/messages", json={"surface_id": alpha["id"], "to": TO, "body": "Sale!"}
    )
    message = _accepted(response)
    assert message["from"] == "ACME"
    assert message["message_type"] == "marketing"


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("Hello", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),
        ("€" * 81, "GSM-7", 2),
        ("Hello 😀", "UCS-2", 1),
        ("ж" * 70, "UCS-2", 1),
        ("ж" * 71, "UCS-2", 2),
        ("a" * 1600, "GSM-7", 11),
    ],
)
async def test_segments_and_encoding(
    client: httpx.AsyncClient, send: Send, body: str, encoding: str, segments: int
) -> None:
    message = _accepted(await send(body=body))
    assert (message["encoding"], message["segments"]) == (encoding, segments)
    shown = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert shown["body"] == body
    assert (shown["encoding"], shown["segments"]) == (encoding, segments)


async def test_send_at_in_the_future_is_scheduled(client: httpx.AsyncClient, send: Send) -> None:
    when = datetime.now(UTC) + timedelta(hours=2)
    message = _accepted(await send(send_at=when.isoformat()))
    assert message["status"] == "scheduled"
    assert _at(message["send_at"]) == when
    shown = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert shown["status"] == "scheduled"
    assert [e["type"] for e in shown["events"]] == ["scheduled"]
    assert _at(shown["send_at"]) == when


async def test_send_at_with_an_offset_means_the_same_instant(send: Send) -> None:
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    paris = when.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert paris.endswith("+02:00")
    message = _accepted(await send(send_at=paris))
    assert message["status"] == "scheduled"
    assert _at(message["send_at"]) == when


async def test_send_at_in_the_past_is_queued(client: httpx.AsyncClient, send: Send) -> None:
    when = datetime.now(UTC) - timedelta(minutes=5)
    message = _accepted(await send(send_at=when.isoformat()))
    assert message["status"] == "queued"
    shown = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert [e["type"] for e in shown["events"]] == ["queued"]


async def test_a_naive_send_at_is_a_field_error(
    client: httpx.AsyncClient, send: Send, services: Services
) -> None:
    naive = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    response = await send(send_at=naive)
    assert response.status_code == 422, response.text
    assert _fields(response) == ["send_at"]
    assert await _count(services, messages) == 0


# --- bad input -------------------------------------------------------------------------------

MISSING = "<missing>"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"surface_id": "srf_nope"}, "surface_id"),
        ({"to": "not a number"}, "to"),
        ({"to": "+33 6"}, "to"),
        ({"to": "0612345678"}, "to"),
        ({"to": ""}, "to"),
        ({"to": MISSING}, "to"),
        ({"body": ""}, "body"),
        ({"body": "   \n"}, "body"),
        ({"body": "a" * 1601}, "body"),
        ({"body": MISSING}, "body"),
        ({"surface_id": MISSING}, "surface_id"),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
async def test_bad_input_names_the_field(
    client: httpx.AsyncClient,
    surface: dict[str, Any],
    services: Services,
    change: dict[str, Any],
    field: str,
) -> None:
    document: dict[str, Any] = {"surface_id": surface["id"], "to": TO, "body": "Hi", **change}
    document = {k: v for k, v in document.items() if v != MISSING}
    response = await client.post("/api/v1/messages", json=document)
    assert response.status_code == 422, response.text
    assert field in _fields(response)
    assert await _count(services, messages) == 0
    assert await _list(client) == []


async def test_not_json_body_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/messages", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    _fields(response)


# --- Idempotency-Key -------------------------------------------------------------------------


async def test_same_key_and_body_answer_the_first_response_again(
    client: httpx.AsyncClient, send: Send, services: Services
) -> None:
    first = _accepted(await send(headers={"Idempotency-Key": "order-42"}, body="Your code: 1"))
    again = _accepted(await send(headers={"Idempotency-Key": "order-42"}, body="Your code: 1"))
    assert again == first
    assert [m["id"] for m in await _list(client)] == [first["id"]]
    assert await _count(services, messages) == 1
    assert await _count(services, outbox) == 1


async def test_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, send: Send, services: Services
) -> None:
    first = _accepted(await send(headers={"Idempotency-Key": "order-43"}, body="Your code: 1"))
    for other in ({"body": "Your code: 2"}, {"to": "+33612345679", "body": "Your code: 1"}):
        response = await send(headers={"Idempotency-Key": "order-43"}, **other)
        assert response.status_code == 422, response.text
        assert _fields(response) == ["Idempotency-Key"]
    assert [m["id"] for m in await _list(client)] == [first["id"]]


async def test_different_keys_create_different_messages(
    client: httpx.AsyncClient, send: Send
) -> None:
    one = _accepted(await send(headers={"Idempotency-Key": "a"}))
    two = _accepted(await send(headers={"Idempotency-Key": "b"}))
    assert one["id"] != two["id"]
    assert len(await _list(client)) == 2


async def test_concurrent_twins_with_the_same_key_create_one_message(
    client: httpx.AsyncClient, send: Send, services: Services
) -> None:
    headers = {"Idempotency-Key": "twin-1"}
    one, two = await asyncio.gather(
        send(headers=headers, body="Only once"), send(headers=headers, body="Only once")
    )
    first, second = _accepted(one), _accepted(two)
    assert first["id"] == second["id"]
    assert [m["id"] for m in await _list(client, to=TO)] == [first["id"]]
    assert await _count(services, messages) == 1
    assert await _count(services, outbox) == 1
    assert await _count(services, idempotency_keys) == 1


async def test_keys_of_different_api_keys_are_independent(
    client: httpx.AsyncClient, send: Send, services: Services
) -> None:
    alice, bob = await _key(services, "sender"), await _key(services, "sender")
    sent_by_alice = _accepted(await send(headers={**alice, "Idempotency-Key": "k-1"}))
    sent_by_bob = _accepted(await send(headers={**bob, "Idempotency-Key": "k-1"}))
    assert sent_by_alice["id"] != sent_by_bob["id"]
    # and each one still replays its own
    again = _accepted(await send(headers={**alice, "Idempotency-Key": "k-1"}))
    assert again["id"] == sent_by_alice["id"]
    assert len(await _list(client)) == 2


@pytest.mark.parametrize("key", [" ", "k" * 256])
async def test_an_unusable_idempotency_key_is_a_field_error(
    send: Send, services: Services, key: str
) -> None:
    response = await send(headers={"Idempotency-Key": key})
    assert response.status_code == 422, response.text
    assert _fields(response) == ["Idempotency-Key"]
    assert await _count(services, messages) == 0


# --- cancelling ------------------------------------------------------------------------------


async def test_cancel_a_queued_message_once(
    client: httpx.AsyncClient, send: Send, services: Services
) -> None:
    message = _accepted(await send())
    response = await client.post(f"/api/v1/messages/{message['id']}/cancel")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert [e["type"] for e in cancelled["events"]] == ["queued", "cancelled"]
    shown = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert shown["status"] == "cancelled"
    assert [e["type"] for e in shown["events"]] == ["queued", "cancelled"]
    # nothing left for a worker to claim
    assert await _count(services, outbox) == 0

    again = await client.post(f"/api/v1/messages/{message['id']}/cancel")
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["status"] == 409
    shown = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert [e["type"] for e in shown["events"]] == ["queued", "cancelled"]


async def test_cancel_a_scheduled_message(client: httpx.AsyncClient, send: Send) -> None:
    when = datetime.now(UTC) + timedelta(days=1)
    message = _accepted(await send(send_at=when.isoformat()))
    response = await client.post(f"/api/v1/messages/{message['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert [e["type"] for e in response.json()["events"]] == ["scheduled", "cancelled"]


async def test_a_surface_with_pending_messages_cannot_be_deleted(
    client: httpx.AsyncClient, send: Send, surface: dict[str, Any]
) -> None:
    message = _accepted(await send())
    refused = await client.delete(f"/api/v1/surfaces/{surface['id']}")
    assert refused.status_code == 409, refused.text
    assert (await client.get(f"/api/v1/surfaces/{surface['id']}")).status_code == 200
    await client.post(f"/api/v1/messages/{message['id']}/cancel")
    assert (await client.delete(f"/api/v1/surfaces/{surface['id']}")).status_code == 204


# --- listing ---------------------------------------------------------------------------------


async def test_list_filters(
    client: httpx.AsyncClient, make_surface: SurfaceFactory, services: Services
) -> None:
    first, second = await make_surface(), await make_surface()

    async def post(surface_id: str, to: str) -> str:
        response = await client.post(
            "/api/v1/messages", json={"surface_id": surface_id, "to": to, "body": "Hi"}
        )
        return str(_accepted(response)["id"])

    a = await post(first["id"], TO)
    b = await post(first["id"], "+33612345679")
    c = await post(second["id"], TO)
    assert (await client.post(f"/api/v1/messages/{b}/cancel")).status_code == 200

    def ids(items: list[dict[str, Any]]) -> set[str]:
        return {m["id"] for m in items}

    assert ids(await _list(client)) == {a, b, c}
    assert ids(await _list(client, status="cancelled")) == {b}
    assert ids(await _list(client, status="queued")) == {a, c}
    assert ids(await _list(client, status="delivered")) == set()
    assert ids(await _list(client, to=TO)) == {a, c}
    assert ids(await _list(client, to="+33 6 12 34 56 78")) == {a, c}
    assert ids(await _list(client, surface_id=first["id"])) == {a, b}
    assert ids(await _list(client, surface_id=second["id"], to=TO)) == {c}
    assert ids(await _list(client, surface_id=second["id"], status="cancelled")) == set()
    listed = {m["id"]: m for m in await _list(client)}
    assert listed[b]["status"] == "cancelled"
    assert listed[a]["to"] == TO
    assert listed[c]["surface_id"] == second["id"]


async def test_list_pages_newest_first(client: httpx.AsyncClient, send: Send) -> None:
    made = []
    for n in range(5):
        made.append(_accepted(await send(body=f"message {n}"))["id"])
        # ids order by millisecond; keep creations in distinct milliseconds
        await asyncio.sleep(0.002)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/api/v1/messages", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        pages += 1
        seen.extend(m["id"] for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"to": "not a number"}, "to"),
        ({"cursor": "%%%"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
    ],
)
async def test_bad_list_parameters_are_field_errors(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/v1/messages", params=params)
    assert response.status_code == 422, response.text
    assert _fields(response) == [field]


async def test_unknown_message_is_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/messages/msg_nope"),
        ("POST", "/api/v1/messages/msg_nope/cancel"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"


# --- authentication and roles ------------------------------------------------------------------


async def test_a_viewer_can_read_but_not_send_or_cancel(
    client: httpx.AsyncClient, send: Send, services: Services
) -> None:
    message = _accepted(await send())
    viewer = await _key(services, "viewer")
    listed = await client.get("/api/v1/messages", headers=viewer)
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["items"]] == [message["id"]]
    got = await client.get(f"/api/v1/messages/{message['id']}", headers=viewer)
    assert got.status_code == 200
    assert got.json()["id"] == message["id"]

    refused = await send(headers=viewer)
    assert refused.status_code == 403, refused.text
    assert "viewer" in refused.json()["detail"]
    refused = await client.post(f"/api/v1/messages/{message['id']}/cancel", headers=viewer)
    assert refused.status_code == 403
    assert await _count(services, messages) == 1
    assert (await client.get(f"/api/v1/messages/{message['id']}")).json()["status"] == "queued"


async def test_a_sender_can_send_read_and_cancel(
    client: httpx.AsyncClient, send: Send, services: Services
) -> None:
    sender = await _key(services, "sender")
    message = _accepted(await send(headers=sender))
    assert message["status"] == "queued"
    got = await client.get(f"/api/v1/messages/{message['id']}", headers=sender)
    assert got.status_code == 200
    cancelled = await client.post(f"/api/v1/messages/{message['id']}/cancel", headers=sender)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"


async def test_missing_or_invalid_key_is_401(
    client: httpx.AsyncClient, send: Send, services: Services
) -> None:
    message = _accepted(await send())
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong-key"}):
        for method, path in [
            ("GET", "/api/v1/messages"),
            ("GET", f"/api/v1/messages/{message['id']}"),
            ("POST", f"/api/v1/messages/{message['id']}/cancel"),
        ]:
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
        response = await send(headers=headers)
        assert response.status_code == 401
        _fields(response)
    assert await _count(services, messages) == 1
