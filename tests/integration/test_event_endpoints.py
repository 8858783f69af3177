"""Event endpoints on SQLite and PostgreSQL: CRUD and its problems, every event type arriving
at a loopback receiver and verified with the ``standardwebhooks`` library, retries, ordering,
secret rotation with overlap, the deliveries log and replay, per-message callback URLs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from tests.conftest import ADMIN_KEY, ClientFactory
from tests.mock_provider import MockProvider, Recorded, Reply, scripted

SENDER = "+15550001111"
PHONE = "+33612345678"
FAILING = "+33699990000"
LINK_BASE = "https://go.example.test"


@pytest.fixture
async def receiver() -> AsyncIterator[MockProvider]:
    """A loopback event receiver: records what arrives, answers 200 unless told otherwise."""
    server = MockProvider()
    server.reply(Reply(200, {"ok": True}))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _endpoint(
    client: httpx.AsyncClient, url: str, types: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/event-endpoints", json={"url": url, "event_types": types or ["*"], **extra}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _surface(
    client: httpx.AsyncClient, provider: MockProvider, name: str = "alerts"
) -> dict[str, Any]:
    counter = iter(range(1, 100_000))

    def answer(request: Recorded) -> Reply:
        sent = json.loads(request.body)
        if sent.get("to") == FAILING:
            return Reply(400, {"error": "invalid number"})
        return Reply(200, {"id": f"prov-{next(counter)}"})

    provider.responder = answer
    credential = await client.post(
        "/api/v1/credentials",
        json={
            "name": f"cred-{name}",
            "preset": "sandbox",
            "provider_url": f"{provider.url}/send",
            "auth": {"type": "none"},
        },
    )
    assert credential.status_code == 201, credential.text
    created = await client.post(
        "/api/v1/surfaces",
        json={
            "name": name,
            "credential_id": credential.json()["id"],
            "sender": SENDER,
            "link_tracking": {"enabled": True, "base_url": LINK_BASE},
        },
    )
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


def _hook(url: str) -> str:
    return url[url.index("/hooks/") :]


def _verified(secret: str, request: Recorded) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


async def _send(client: httpx.AsyncClient, surface: dict[str, Any], to: str, **extra: Any) -> str:
    response = await client.post(
        "/api/v1/messages",
        json={"surface_id": surface["id"], "to": to, "body": "See https://acme.example/x", **extra},
    )
    assert response.status_code == 202, response.text
    message_id: str = response.json()["id"]
    return message_id


# --- CRUD and problems -----------------------------------------------------------------------


async def test_crud_secret_shown_once_and_field_problems(
    client: httpx.AsyncClient, receiver: MockProvider
) -> None:
    created = await _endpoint(
        client, f"{receiver.url}/in", ["message.delivered", "message.received"], description="ops"
    )
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["secret_hint"].endswith(secret[-4:])
    assert created["enabled"] is True and created["disabled_reason"] is None
    one = (await client.get(f"/api/v1/event-endpoints/{created['id']}")).json()
    listed = (await client.get("/api/v1/event-endpoints")).json()
    assert secret not in json.dumps(one) and secret not in json.dumps(listed)
    assert [e["id"] for e in listed["items"]] == [created["id"]]

    patched = await client.patch(
        f"/api/v1/event-endpoints/{created['id']}", json={"event_types": ["*"], "enabled": False}
    )
    assert patched.status_code == 200
    assert patched.json()["event_types"] == ["*"] and patched.json()["enabled"] is False

    bad = await client.post(
        "/api/v1/event-endpoints",
        json={"url": "ftp://example.com/x", "event_types": ["message.sent", "message.exploded"]},
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"url", "event_types[1]"}
    for body in (
        {"url": f"{receiver.url}/in"},
        {"url": f"{receiver.url}/in", "event_types": []},
        {"url": "https://user:pw@example.com/", "event_types": ["*"]},
        {"url": "https://169.254.169.254/latest", "event_types": ["*"]},
        {"url": "x" * 5000, "event_types": ["*"]},
        {"url": f"{receiver.url}/in", "event_types": [{"deep": [1]}]},
        {"url": f"{receiver.url}/in", "event_types": ["*"], "secret": "mine"},
    ):
        refused = await client.post("/api/v1/event-endpoints", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["errors"], refused.text

    assert (await client.get("/api/v1/event-endpoints/ep_nope")).status_code == 404
    deleted = await client.delete(f"/api/v1/event-endpoints/{created['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"/api/v1/event-endpoints/{created['id']}")).status_code == 404


async def test_private_addresses_are_refused_like_provider_urls(
    tmp_path: Path, sqlite_url: str, make_client: ClientFactory, receiver: MockProvider
) -> None:
    settings = Settings(
        database_url=sqlite_url,
        admin_key=SecretStr(ADMIN_KEY),
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        allow_private_provider_urls=False,
        state_dir=tmp_path / "state",
    )
    services = await build_services(settings)
    try:
        async with make_client(settings, services) as client:
            for url in (
                receiver.url,  # http (and loopback)
                f"https://127.0.0.1:{receiver.port}/in",
                "https://10.1.2.3/in",
                "https://[::1]/in",
                "https://localhost/in",
            ):
                refused = await client.post(
                    "/api/v1/event-endpoints", json={"url": url, "event_types": ["*"]}
                )
                assert refused.status_code == 422, url
                assert refused.json()["errors"][0]["field"] == "url"
            credential = await client.post(
                "/api/v1/credentials",
                json={"name": "c", "preset": "sandbox", "auth": {"type": "none"}},
            )
            surface = await client.post(
                "/api/v1/surfaces",
                json={"name": "s", "credential_id": credential.json()["id"], "sender": SENDER},
            )
            message = await client.post(
                "/api/v1/messages",
                json={
                    "surface_id": surface.json()["id"],
                    "to": PHONE,
                    "body": "Hi",
                    "callback_url": "https://127.0.0.1/cb",
                },
            )
            assert message.status_code == 422
            assert message.json()["errors"][0]["field"] == "callback_url"
    finally:
        await services.close()
    assert receiver.requests == []


# --- every event type ------------------------------------------------------------------------


async def test_every_event_type_arrives_signed(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    receiver: MockProvider,
) -> None:
    endpoint = await _endpoint(client, f"{receiver.url}/events")
    surface = await _surface(client, mock_provider)
    dispatcher = services.new_event_dispatcher()

    delivered = await _send(client, surface, PHONE)
    undelivered = await _send(client, surface, "+33612345679")
    failed = await _send(client, surface, FAILING)
    await services.new_worker().drain()
    views = {
        m: (await client.get(f"/api/v1/messages/{m}")).json() for m in (delivered, undelivered)
    }
    status_hook = _hook(surface["status_webhook_url"])
    for message_id, state in ((delivered, "delivered"), (undelivered, "undelivered")):
        report = {"id": views[message_id]["provider_message_id"], "status": state}
        assert (await client.post(status_hook, json=report)).json()["applied"] == 1

    inbound = _hook(surface["inbound_webhook_url"])
    stop = {"from": "+33600000001", "to": SENDER, "text": "STOP", "id": "mo-1"}
    assert (await client.post(inbound, json=stop)).status_code == 200
    suppressed = await _send(client, surface, "+33600000001")

    body = views[delivered]["body"]
    code = body[body.index("/l/") + 3 :].split()[0]
    assert (
        await client.get(f"/l/{code}", headers={"User-Agent": "Mozilla/5.0"})
    ).status_code == 302

    assert (await client.put("/api/v1/profiles/p1", json={"phone": "+33611111111"})).is_success
    campaign = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "c1",
            "surface_id": surface["id"],
            "body": "Sale",
            "audience": {"profile_ids": ["p1"]},
        },
    )
    assert campaign.status_code == 201, campaign.text
    assert (await client.post(f"/api/v1/campaigns/{campaign.json()['id']}/launch")).is_success
    runner = services.new_campaign_runner()
    await runner.run_once()
    await services.new_worker().drain()
    await runner.run_once()
    assert (await client.get(f"/api/v1/campaigns/{campaign.json()['id']}")).json()[
        "status"
    ] == "completed"

    await dispatcher.drain()
    payloads = [_verified(endpoint["secret"], r) for r in receiver.requests]
    types = Counter(p["type"] for p in payloads)
    assert set(types) == {
        "message.queued",
        "message.sent",
        "message.delivered",
        "message.undelivered",
        "message.failed",
        "message.suppressed",
        "message.received",
        "consent.changed",
        "campaign.completed",
        "link.clicked",
    }, types
    by_message: dict[str, list[str]] = {}
    for p in payloads:
        if p["type"].startswith("message.") and "message_id" in p["data"]:
            by_message.setdefault(p["data"]["message_id"], []).append(p["type"])
    assert by_message[delivered] == ["message.queued", "message.sent", "message.delivered"]
    assert by_message[failed] == ["message.queued", "message.failed"]
    assert by_message[suppressed] == ["message.suppressed"]
    ids = [r.header("webhook-id") for r in receiver.requests]
    assert len(ids) == len(set(ids))
    received = next(p for p in payloads if p["type"] == "message.received")
    assert received["data"]["text"] == "STOP" and received["data"]["from"] == "+33600000001"
    consent = next(p for p in payloads if p["type"] == "consent.changed")
    assert consent["data"]["action"] == "opted_out"
    done = next(p for p in payloads if p["type"] == "campaign.completed")
    assert done["data"]["counts"] == {"sent": 1} and done["data"]["targeted"] == 1
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(
            receiver.requests[0].body, receiver.requests[0].headers
        )

    log = (await client.get(f"/api/v1/event-endpoints/{endpoint['id']}/deliveries")).json()
    assert {d["status"] for d in log["items"]} == {"delivered"}
    assert endpoint["secret"] not in json.dumps(log)


async def test_subscriptions_filter_and_nothing_before_the_endpoint(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    receiver: MockProvider,
) -> None:
    surface = await _surface(client, mock_provider)
    before = await _send(client, surface, PHONE)
    await services.new_worker().drain()
    dispatcher = services.new_event_dispatcher()
    await dispatcher.drain()  # the cursors start here: earlier events are not emitted
    await _endpoint(client, f"{receiver.url}/only-sent", ["message.sent"])
    after = await _send(client, surface, "+33612345670")
    await services.new_worker().drain()
    await dispatcher.drain()
    got = [
        (json.loads(r.body)["type"], json.loads(r.body)["data"]["message_id"])
        for r in receiver.requests
    ]
    assert got == [("message.sent", after)], (before, got)


# --- retries, refusals, ordering ---------------------------------------------------------------


async def test_503_then_200_arrives_once_per_event_in_order(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    receiver: MockProvider,
) -> None:
    endpoint = await _endpoint(client, f"{receiver.url}/flaky")
    surface = await _surface(client, mock_provider)
    receiver.responder = scripted(
        Reply(503, {"busy": True}, headers={"Retry-After": "1"}), Reply(200)
    )
    message_id = await _send(client, surface, PHONE)
    await services.new_worker().drain()
    dispatcher = services.new_event_dispatcher()
    await dispatcher.tail_once()
    assert await dispatcher.deliver_once() == 1  # queued only: sent waits behind it
    log = (await client.get(f"/api/v1/event-endpoints/{endpoint['id']}/deliveries")).json()
    statuses = {d["type"]: (d["status"], d["attempts"], d["last_status"]) for d in log["items"]}
    assert statuses["message.queued"] == ("pending", 1, 503)
    assert statuses["message.sent"] == ("pending", 0, None)
    assert await dispatcher.deliver_once() == 0  # not due yet, and the later one is held back
    async with services.db.transaction() as conn:
        await conn.exec_driver_sql(
            "UPDATE event_deliveries SET next_attempt_at = created_at"
        )  # the retry falls due (instead of waiting its second)
    await dispatcher.drain()
    accepted = [
        json.loads(r.body)["type"] for r in receiver.requests[1:]
    ]  # the first was answered 503
    assert accepted == ["message.queued", "message.sent"]
    ids = [r.header("webhook-id") for r in receiver.requests]
    assert ids[0] == ids[1] and len(set(ids)) == 2  # the retry kept its webhook-id
    seen: set[str] = set()
    for request in receiver.requests[1:]:  # a receiver de-duplicating by webhook-id
        seen.add(str(request.header("webhook-id")))
    assert len(seen) == 2
    assert all(
        _verified(endpoint["secret"], r)["data"]["message_id"] == message_id
        for r in receiver.requests
    )
    log = (await client.get(f"/api/v1/event-endpoints/{endpoint['id']}/deliveries")).json()
    assert [(d["status"], d["attempts"]) for d in log["items"]] == [
        ("delivered", 1),
        ("delivered", 2),
    ]


async def test_a_4xx_fails_without_retry_and_replays(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    receiver: MockProvider,
) -> None:
    endpoint = await _endpoint(client, f"{receiver.url}/strict", ["message.queued"])
    surface = await _surface(client, mock_provider)
    receiver.reply(Reply(400, {"error": "no thanks", "token": "x" * 5000}))
    await _send(client, surface, PHONE)
    dispatcher = services.new_event_dispatcher()
    await dispatcher.drain()
    await dispatcher.drain()
    assert len(receiver.requests) == 1
    log = (await client.get(f"/api/v1/event-endpoints/{endpoint['id']}/deliveries")).json()
    (delivery,) = log["items"]
    assert delivery["status"] == "failed" and delivery["last_status"] == 400
    assert "no thanks" in delivery["last_response"] and len(delivery["last_response"]) <= 300
    failed = (
        await client.get(f"/api/v1/event-endpoints/{endpoint['id']}/deliveries?status=failed")
    ).json()
    assert len(failed["items"]) == 1

    receiver.reply(Reply(204, None))
    path = f"/api/v1/event-endpoints/{endpoint['id']}/deliveries/{delivery['id']}/replay"
    replayed = await client.post(path)
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
    await dispatcher.drain()
    assert len(receiver.requests) == 2
    assert receiver.requests[0].header("webhook-id") == receiver.requests[1].header("webhook-id")
    again = await client.post(path)
    assert again.status_code == 409  # delivered now
    assert (await client.post(path.replace(delivery["id"], "dlv_999999"))).status_code == 404
    assert (await client.post(path.replace(delivery["id"], "nope"))).status_code == 404


async def test_test_event_rotation_overlap_and_auto_disable(
    client: httpx.AsyncClient,
    services: Services,
    receiver: MockProvider,
) -> None:
    endpoint = await _endpoint(client, f"{receiver.url}/rot", ["campaign.completed"])
    old = endpoint["secret"]
    tested = await client.post(f"/api/v1/event-endpoints/{endpoint['id']}/test")
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == "delivered" and tested.json()["type"] == "endpoint.test"
    assert _verified(old, receiver.requests[-1])["type"] == "endpoint.test"

    rotated = await client.post(f"/api/v1/event-endpoints/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old and rotated.json()["previous_secret_expires_at"] is not None
    await client.post(f"/api/v1/event-endpoints/{endpoint['id']}/test")
    during = receiver.requests[-1]
    assert len(str(during.header("webhook-signature")).split()) == 2
    assert _verified(old, during) == _verified(new, during)  # both verify the same delivery

    ended = await client.post(
        f"/api/v1/event-endpoints/{endpoint['id']}/rotate-secret", json={"overlap_seconds": 0}
    )
    newest = ended.json()["secret"]
    await client.post(f"/api/v1/event-endpoints/{endpoint['id']}/test")
    after = receiver.requests[-1]
    _verified(newest, after)
    with pytest.raises(WebhookVerificationError):
        _verified(new, after)
    bad = await client.post(
        f"/api/v1/event-endpoints/{endpoint['id']}/rotate-secret", json={"overlap_seconds": -1}
    )
    assert bad.status_code == 422

    # a day of failures disables the endpoint, with a notice
    receiver.reply(Reply(500, {"down": True}))
    failing = await client.post(f"/api/v1/event-endpoints/{endpoint['id']}/test")
    assert failing.json()["status"] == "pending" and failing.json()["last_status"] == 500
    async with services.db.transaction() as conn:
        await conn.exec_driver_sql(
            "UPDATE event_endpoints SET failing_since = failing_since - INTERVAL '25 hours'"
            if services.db.dialect == "postgresql"
            else "UPDATE event_endpoints SET failing_since = datetime(failing_since, '-25 hours')"
        )
    await client.post(f"/api/v1/event-endpoints/{endpoint['id']}/test")
    view = (await client.get(f"/api/v1/event-endpoints/{endpoint['id']}")).json()
    assert view["enabled"] is False and view["disabled_at"] is not None
    assert "HTTP 500" in view["disabled_reason"]
    enabled = await client.patch(
        f"/api/v1/event-endpoints/{endpoint['id']}", json={"enabled": True}
    )
    assert enabled.json()["disabled_reason"] is None and enabled.json()["failing_since"] is None
    assert all(s not in json.dumps(view) for s in (old, new, newest))


# --- per-message callback URLs -----------------------------------------------------------------


async def test_callback_url_receives_that_messages_events_only(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    receiver: MockProvider,
) -> None:
    surface = await _surface(client, mock_provider)
    dispatcher = services.new_event_dispatcher()
    await dispatcher.drain()
    watched = await _send(client, surface, PHONE, callback_url=f"{receiver.url}/cb/1")
    await _send(client, surface, "+33612345670")
    batch = await client.post(
        "/api/v1/messages/batch",
        json={
            "messages": [
                {"surface_id": surface["id"], "to": "+33612345671", "body": "b"},
                {
                    "surface_id": surface["id"],
                    "to": "+33612345672",
                    "body": "b",
                    "callback_url": "ftp://nope",
                },
            ]
        },
    )
    assert [r["status"] for r in batch.json()["results"]] == [202, 422]
    await services.new_worker().drain()
    await dispatcher.drain()
    secret = (await client.get("/api/v1/event-endpoints/callback-secret")).json()["secret"]
    payloads = [_verified(secret, r) for r in receiver.requests]
    assert [(p["type"], p["data"]["message_id"]) for p in payloads] == [
        ("message.queued", watched),
        ("message.sent", watched),
    ]
    assert {r.path for r in receiver.requests} == {"/cb/1"}


async def test_a_key_rotation_signs_callbacks_with_old_and_new_secrets(
    settings: Settings,
    make_client: ClientFactory,
    mock_provider: MockProvider,
    receiver: MockProvider,
) -> None:
    """``SMSBRIDGE_SECRET_KEYS=new,old``: callbacks carry a signature from each key's secret, so
    a receiver still holding the old secret keeps verifying until it moves to the new one."""
    assert settings.secret_keys is not None
    old_key = settings.secret_keys.get_secret_value()
    new_key = Fernet.generate_key().decode()

    async def answer_with(keys: str) -> dict[str, Any]:
        keyed = settings.model_copy(update={"secret_keys": SecretStr(keys)})
        services = await build_services(keyed)
        try:
            async with make_client(keyed, services) as client:
                found: dict[str, Any] = (
                    await client.get("/api/v1/event-endpoints/callback-secret")
                ).json()
                return found
        finally:
            await services.close()

    old = await answer_with(old_key)
    assert old["previous_secrets"] == []

    rotated = settings.model_copy(update={"secret_keys": SecretStr(f"{new_key},{old_key}")})
    services = await build_services(rotated)
    try:
        async with make_client(rotated, services) as client:
            surface = await _surface(client, mock_provider)
            dispatcher = services.new_event_dispatcher()
            await dispatcher.drain()
            message = await _send(client, surface, PHONE, callback_url=f"{receiver.url}/cb/r")
            await services.new_worker().drain()
            await dispatcher.drain()
            both = (await client.get("/api/v1/event-endpoints/callback-secret")).json()
    finally:
        await services.close()
    assert both["secret"] != old["secret"]
    assert both["previous_secrets"] == [old["secret"]]
    assert [r.headers["webhook-signature"].count("v1,") for r in receiver.requests] == [2, 2]
    for secret in (old["secret"], both["secret"]):
        assert [_verified(secret, r)["type"] for r in receiver.requests] == [
            "message.queued",
            "message.sent",
        ]
    assert {_verified(both["secret"], r)["data"]["message_id"] for r in receiver.requests} == {
        message
    }

    # The old key removed: only the new secret signs.
    new = await answer_with(new_key)
    assert (new["secret"], new["previous_secrets"]) == (both["secret"], [])
