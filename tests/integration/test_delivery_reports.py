"""Delivery-report webhooks on SQLite and PostgreSQL: custom mappings and preset payload
shapes (Twilio form, Infobip batch), replays, out-of-order reports, unknown ids, bad bodies."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from smsbridge.container import Services
from smsbridge.domain.signatures import twilio_signature
from smsbridge.storage.messages import apply_early_reports
from smsbridge.storage.tables import early_delivery_reports
from tests.conftest import ClientFactory, CredentialFactory
from tests.mock_provider import MockProvider, Recorded, Reply, scripted

SENDER = "+15550001111"


async def _surface(client: httpx.AsyncClient, credential: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/surfaces",
        json={
            "name": f"s-{credential['id'][-6:]}",
            "credential_id": credential["id"],
            "sender": SENDER,
        },
    )
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def _send_one(
    client: httpx.AsyncClient, services: Services, surface: dict[str, Any], to: str
) -> dict[str, Any]:
    sent = await client.post(
        "/api/v1/messages", json={"surface_id": surface["id"], "to": to, "body": "Hello"}
    )
    assert sent.status_code == 202, sent.text
    await services.new_worker().drain()
    view: dict[str, Any] = (await client.get(f"/api/v1/messages/{sent.json()['id']}")).json()
    assert view["status"] == "sent", view
    return view


def _hook(surface: dict[str, Any]) -> str:
    url = str(surface["status_webhook_url"])
    return url[url.index("/hooks/") :]


async def test_custom_mapping_replays_and_out_of_order(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    mock_provider.reply(Reply(200, {"msg": {"ref": "abc-1"}}))
    response = await client.post(
        "/api/v1/credentials",
        json={
            "name": "custom",
            "provider_url": f"{mock_provider.url}/send",
            "auth": {"type": "none"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "response": {"message_id_path": "$.msg.ref"},
            "delivery_reports": {
                "message_id_path": "$.ref",
                "status_path": "$.state",
                "error_path": "$.reason",
                "status_map": {"DELIVRD": "delivered", "UNDELIV": "undelivered", "ENROUTE": "sent"},
            },
        },
    )
    assert response.status_code == 201, response.text
    surface = await _surface(client, response.json())
    message = await _send_one(client, services, surface, "+33612345678")
    hook = _hook(surface)

    enroute = await client.post(hook, json={"ref": "abc-1", "state": "ENROUTE"})
    assert enroute.json() == {"received": 1, "applied": 0, "unknown": 0, "ignored": 1}
    first = await client.post(hook, json={"ref": "abc-1", "state": "DELIVRD"})
    assert first.status_code == 200
    assert first.json() == {"received": 1, "applied": 1, "unknown": 0, "ignored": 0}
    replay = await client.post(hook, json={"ref": "abc-1", "state": "DELIVRD"})
    assert replay.json()["applied"] == 0
    late = await client.post(hook, json={"ref": "abc-1", "state": "UNDELIV", "reason": "late"})
    assert late.json()["applied"] == 0
    view = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert view["status"] == "delivered"
    assert view["delivered_at"] is not None
    assert [e["type"] for e in view["events"]].count("delivered") == 1

    unknown = await client.post(hook, json={"ref": "nope", "state": "DELIVRD"})
    assert unknown.status_code == 200
    assert unknown.json()["unknown"] == 1
    unmapped = await client.post(hook, json={"ref": "abc-1", "state": "WEIRD"})
    assert unmapped.json() == {"received": 1, "applied": 0, "unknown": 0, "ignored": 1}


async def test_twilio_form_status_callback(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    mock_provider.reply(Reply(201, {"sid": "SM1234567890abcdef", "status": "queued"}))
    response = await client.post(
        "/api/v1/credentials",
        json={
            "name": "twilio",
            "preset": "twilio",
            "provider_url": f"{mock_provider.url}/2010-04-01/Accounts/AC1/Messages.json",
            "provider_app_id": "AC1",
            "auth": {"username": "AC1", "password": "twilio-auth-token-1234"},
        },
    )
    assert response.status_code == 201, response.text
    surface = await _surface(client, response.json())
    message = await _send_one(client, services, surface, "+33612345679")
    # Twilio's documented callback: form fields, MessageStatus lower-case, ErrorCode on failure.
    form = {
        "MessageSid": "SM1234567890abcdef",
        "MessageStatus": "undelivered",
        "ErrorCode": "30005",
        "AccountSid": "AC1",
        "From": SENDER,
        "To": "+33612345679",
    }
    hook = _hook(surface)
    public = "https://sms.example.test" + hook  # the URL Twilio called (SMSBRIDGE_PUBLIC_URL)
    unsigned = await client.post(hook, data=form)
    forged = await client.post(
        hook,
        data={**form, "MessageStatus": "delivered"},
        headers={"X-Twilio-Signature": twilio_signature("twilio-auth-token-1234", public, form)},
    )
    assert (unsigned.status_code, forged.status_code) == (403, 403)
    assert (await client.get(f"/api/v1/messages/{message['id']}")).json()["status"] == "sent"
    signature = twilio_signature("twilio-auth-token-1234", public, form)
    result = await client.post(hook, data=form, headers={"X-Twilio-Signature": signature})
    assert result.json()["applied"] == 1, result.text
    view = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert view["status"] == "undelivered"
    assert view["last_error"] == "30005"


async def test_infobip_batch(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    ids = iter(["ib-1", "ib-2"])

    def respond(_request: Recorded) -> Reply:
        return Reply(
            200, {"messages": [{"messageId": next(ids), "status": {"groupName": "PENDING"}}]}
        )

    mock_provider.responder = respond
    response = await client.post(
        "/api/v1/credentials",
        json={
            "name": "infobip",
            "preset": "infobip",
            "provider_url": f"{mock_provider.url}/sms/3/messages",
            "auth": {"token": "infobip-api-key-5678"},
        },
    )
    assert response.status_code == 201, response.text
    surface = await _surface(client, response.json())
    one = await _send_one(client, services, surface, "+33612345670")
    two = await _send_one(client, services, surface, "+33612345671")
    report = {
        "results": [
            {
                "messageId": "ib-1",
                "to": "33612345670",
                "status": {"groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"},
                "error": {"name": "NO_ERROR"},
            },
            {
                "messageId": "ib-2",
                "to": "33612345671",
                "status": {"groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_NOT_DELIVERED"},
                "error": {"name": "EC_ABSENT_SUBSCRIBER"},
            },
            {"messageId": "ib-404", "status": {"groupName": "DELIVERED"}},
        ]
    }
    result = await client.post(_hook(surface), json=report)
    assert result.json() == {"received": 3, "applied": 2, "unknown": 1, "ignored": 0}
    first = (await client.get(f"/api/v1/messages/{one['id']}")).json()
    second = (await client.get(f"/api/v1/messages/{two['id']}")).json()
    assert (first["status"], second["status"]) == ("delivered", "undelivered")
    assert second["last_error"] == "EC_ABSENT_SUBSCRIBER"


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"<xml/>", "application/xml", 400),
        (b"\xff\xfe=1", "application/x-www-form-urlencoded", 400),
        (b"{" + b'"a": "' + b"x" * (1024 * 1024) + b'"}', "application/json", 413),
    ],
)
async def test_bad_bodies_are_refused_without_effect(
    client: httpx.AsyncClient,
    make_credential: Any,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    credential = await make_credential(
        delivery_reports={
            "message_id_path": "$.id",
            "status_path": "$.status",
            "status_map": {"ok": "delivered"},
        }
    )
    surface = await _surface(client, credential)
    response = await client.post(
        _hook(surface), content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_unknown_token_and_unmapped_credential(
    client: httpx.AsyncClient, make_credential: Any
) -> None:
    assert (await client.post("/hooks/status/not-a-token", json={})).status_code == 404
    surface = await _surface(client, await make_credential())
    response = await client.post(_hook(surface), json={"id": "x", "status": "ok"})
    assert response.status_code == 400
    assert "delivery_reports" in response.json()["detail"]
    json.dumps(response.json())


# (what the provider answers to the send, how it posts its report, the report) — shapes from
# each provider's documentation; {id} is the provider's message id.
PRESET_REPORTS: dict[str, tuple[Any, str, Any]] = {
    "sinch": (
        {"id": "01FC66621XXXXX119Z8PMV1QPQ", "to": ["33612345678"], "canceled": False},
        "json",
        {
            "type": "recipient_delivery_report_sms",
            "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
            "recipient": "33612345678",
            "code": 0,
            "status": "Delivered",
            "at": "2026-03-01T12:00:05.000Z",
        },
    ),
    "vonage": (
        {
            "message-count": "1",
            "messages": [{"to": "33612345678", "message-id": "0A0000001234ABCD", "status": "0"}],
        },
        "form",
        {
            "msisdn": "33612345678",
            "to": "AcmeInc",
            "network-code": "20801",
            "messageId": "0A0000001234ABCD",
            "price": "0.03330000",
            "status": "delivered",
            "scts": "2603011200",
            "err-code": "0",
            "message-timestamp": "2026-03-01 12:00:05",
        },
    ),
    "plivo": (
        {"api_id": "e5f1", "message": "message(s) queued", "message_uuid": ["db3ce55a-7f1d"]},
        "json",
        {
            "MessageUUID": "db3ce55a-7f1d",
            "Status": "delivered",
            "To": "33612345678",
            "From": "15550001111",
            "ErrorCode": "000",
        },
    ),
    "telnyx": (
        {"data": {"id": "40385f64-5717", "record_type": "message"}},
        "json",
        {
            "data": {
                "event_type": "message.finalized",
                "id": "evt-2",
                "payload": {
                    "id": "40385f64-5717",
                    "to": [{"phone_number": "+33612345678", "status": "delivered"}],
                    "errors": [],
                },
            }
        },
    ),
}


@pytest.mark.parametrize("preset", sorted(PRESET_REPORTS))
async def test_presets_read_their_providers_report_shapes(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider, preset: str
) -> None:
    answer, kind, report = PRESET_REPORTS[preset]
    mock_provider.reply(Reply(200, answer))
    credential = await client.post(
        "/api/v1/credentials",
        json={
            "name": f"{preset}-dlr",
            "preset": preset,
            "provider_url": f"{mock_provider.url}/send",
            "provider_app_id": "APP1",
            "auth": {"type": "none"},
        },
    )
    assert credential.status_code == 201, credential.text
    surface = await _surface(client, credential.json())
    message = await _send_one(client, services, surface, "+33612345678")
    response = (
        await client.post(_hook(surface), data=report)
        if kind == "form"
        else await client.post(_hook(surface), json=report)
    )
    assert response.json() == {"received": 1, "applied": 1, "unknown": 0, "ignored": 0}
    view = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert (view["status"], view["last_error"]) == ("delivered", None)


async def test_sandbox_reports_delivery_to_the_status_webhook(
    settings: Any, make_client: ClientFactory
) -> None:
    import asyncio

    from smsbridge.container import build_services

    http_client: dict[str, httpx.AsyncClient] = {}

    async def post(url: str, body: bytes) -> None:
        # The sandbox posts to the public URL; here the app is reached in-process.
        await http_client["c"].post(
            url[url.index("/hooks/") :], content=body, headers={"Content-Type": "application/json"}
        )

    services = await build_services(settings, sandbox_report=post)
    try:
        async with make_client(settings, services, base_url="http://t") as http:
            http_client["c"] = http
            credential = await http.post(
                "/api/v1/credentials", json={"name": "sbx", "preset": "sandbox"}
            )
            assert credential.status_code == 201, credential.text
            surface = await _surface(http, credential.json())
            ids = []
            for to in ("+33612345678", "+33612349999"):
                sent = await http.post(
                    "/api/v1/messages", json={"surface_id": surface["id"], "to": to, "body": "Hi"}
                )
                ids.append(sent.json()["id"])
            await services.new_worker().drain()
            statuses: list[str] = []
            for _ in range(50):
                statuses = [(await http.get(f"/api/v1/messages/{i}")).json()["status"] for i in ids]
                if "sent" not in statuses:
                    break
                await asyncio.sleep(0.1)
            assert statuses == ["delivered", "undelivered"]
    finally:
        await services.close()


async def test_standard_webhooks_signing(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    import time

    from smsbridge.domain.signatures import standard_webhooks_signature

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    mock_provider.reply(Reply(200, {"id": "sw-1"}))
    created = await client.post(
        "/api/v1/credentials",
        json={
            "name": "signed",
            "preset": "sandbox",
            "provider_url": f"{mock_provider.url}/send",
            "webhook_signing": {"scheme": "standard_webhooks", "secret": secret},
        },
    )
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["webhook_signing"] == {
        "scheme": "standard_webhooks",
        "secret": {"set": True, "last4": secret[-4:]},
    }
    assert secret not in created.text
    # Sending back what GET returned keeps the secret.
    echoed = await client.patch(
        f"/api/v1/credentials/{view['id']}", json={"webhook_signing": view["webhook_signing"]}
    )
    assert echoed.status_code == 200, echoed.text
    surface = await _surface(client, view)
    message = await _send_one(client, services, surface, "+33612345678")
    body = json.dumps({"id": "sw-1", "status": "delivered"}).encode()
    stamp = str(int(services.clock().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": standard_webhooks_signature(secret, "msg_1", stamp, body),
    }
    unsigned = await client.post(
        _hook(surface), content=body, headers=headers | {"webhook-signature": ""}
    )
    old = str(int(time.time()) - 3600)
    replayed = await client.post(
        _hook(surface),
        content=body,
        headers=headers
        | {
            "webhook-timestamp": old,
            "webhook-signature": standard_webhooks_signature(secret, "msg_1", old, body),
        },
    )
    assert (unsigned.status_code, replayed.status_code) == (403, 403)
    assert (await client.get(f"/api/v1/messages/{message['id']}")).json()["status"] == "sent"
    signed = await client.post(_hook(surface), content=body, headers=headers)
    assert signed.status_code == 200, signed.text
    assert signed.json()["applied"] == 1


async def test_an_early_report_is_parked_then_applied_or_forgotten(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    make_credential: CredentialFactory,
) -> None:
    async def parked() -> int:
        async with services.db.read() as conn:
            query = select(func.count()).select_from(early_delivery_reports)
            return int((await conn.execute(query)).scalar_one())

    hook_holder: dict[str, str] = {}

    async def report_first(request: Recorded) -> Reply:
        # The provider reports delivery before it even answers the send.
        early = await client.post(
            hook_holder["hook"], json={"id": "prov-early", "status": "delivered"}
        )
        assert early.json()["unknown"] == 1
        return Reply(200, {"id": "prov-early"})

    credential = await make_credential(
        name="early",
        preset="sandbox",
        provider_url=f"{mock_provider.url}/send",
        auth={"type": "none"},
    )
    surface = await _surface(client, credential)
    hook_holder["hook"] = _hook(surface)
    mock_provider.responder = report_first
    sent = await client.post(
        "/api/v1/messages", json={"surface_id": surface["id"], "to": "+33612345678", "body": "Hi"}
    )
    worker = services.new_worker()
    await worker.drain()
    assert await parked() == 1
    assert (await client.get(f"/api/v1/messages/{sent.json()['id']}")).json()["status"] == "sent"
    assert await worker.sweep_early_reports() == 1
    view = (await client.get(f"/api/v1/messages/{sent.json()['id']}")).json()
    assert view["status"] == "delivered" and await parked() == 0

    stray = await client.post(hook_holder["hook"], json={"id": "never-sent", "status": "failed"})
    assert stray.json()["unknown"] == 1 and await parked() == 1
    async with services.db.transaction() as conn:  # a day later, nothing claimed it: forgotten
        assert await apply_early_reports(conn, services.clock() + timedelta(days=2)) == 0
    assert await parked() == 0


async def test_concurrent_reports_share_transactions_and_the_first_final_status_wins(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    """Many webhooks at once are applied in few transactions; each is answered with its own
    counts once applied; reports for one message in the same group keep arrival order (the
    first final status wins) and an early report waits for its message in the same way."""
    mock_provider.responder = scripted(
        *(Reply(200, {"msg": {"ref": f"grp-{i}"}}) for i in range(30))
    )
    response = await client.post(
        "/api/v1/credentials",
        json={
            "name": "grouped",
            "provider_url": f"{mock_provider.url}/send",
            "auth": {"type": "none"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "response": {"message_id_path": "$.msg.ref"},
            "delivery_reports": {
                "message_id_path": "$.ref",
                "status_path": "$.state",
                "status_map": {"DELIVRD": "delivered", "UNDELIV": "undelivered"},
            },
        },
    )
    assert response.status_code == 201, response.text
    surface = await _surface(client, response.json())
    hook = _hook(surface)
    for i in range(30):
        accepted = await client.post(
            "/api/v1/messages",
            json={"surface_id": surface["id"], "to": f"+336123400{i:02d}", "body": "Hi"},
        )
        assert accepted.status_code == 202
    await services.new_worker().drain()
    before = services.webhooks.group_stats()[0]
    posts = [{"ref": f"grp-{i}", "state": "DELIVRD"} for i in range(30)]
    # grp-0 gets "undelivered" after its "delivered" in the same burst: it stays delivered
    posts.append({"ref": "grp-0", "state": "UNDELIV"})
    posts.append({"ref": "grp-unknown", "state": "DELIVRD"})
    answers = await asyncio.gather(*(client.post(hook, json=p) for p in posts))
    assert [a.status_code for a in answers] == [200] * len(posts)
    assert [a.json()["applied"] for a in answers] == [1] * 30 + [0, 0]
    assert answers[-1].json()["unknown"] == 1
    groups, units = services.webhooks.group_stats()
    assert units >= len(posts) and groups - before < len(posts) / 2
    listed = await client.get(
        "/api/v1/messages", params={"surface_id": surface["id"], "limit": 100}
    )
    assert {m["status"] for m in listed.json()["items"]} == {"delivered"}
    async with services.db.read() as conn:
        parked = await conn.execute(select(func.count()).select_from(early_delivery_reports))
        assert parked.scalar_one() == 1
