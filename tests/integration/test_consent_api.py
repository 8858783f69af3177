"""Consent over the API on SQLite and PostgreSQL: manual opt-out/in (admin, audited), the
per-number view, the export, and the effect on sends."""

from __future__ import annotations

import csv
import io
import json

import httpx

from smsbridge.container import Services
from tests.conftest import CredentialFactory

SENDER = "+15550001111"


async def _key(services: Services, role: str) -> dict[str, str]:
    created = await services.api_keys.create(f"{role} key", role)
    return {"Authorization": f"Bearer {created.key}"}


async def test_manual_opt_out_and_in_are_audited_and_take_effect(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    credential = await make_credential()
    surface = (
        await client.post(
            "/api/v1/surfaces",
            json={"name": "news", "credential_id": credential["id"], "sender": SENDER},
        )
    ).json()
    out = await client.put(
        "/api/v1/consent/+33 6 12 34 56 78",
        json={"sender": SENDER, "status": "opted_out", "note": "asked by phone"},
    )
    assert out.status_code == 200, out.text
    view = out.json()
    assert view["phone"] == "+33612345678"
    assert [(s["sender"], s["source"]) for s in view["opted_out_of"]] == [(SENDER, "admin")]
    assert view["history"][0]["action"] == "opted_out"
    assert view["history"][0]["note"] == "asked by phone"
    assert view["history"][0]["actor"]  # the API key that did it

    sent = await client.post(
        "/api/v1/messages",
        json={"surface_id": surface["id"], "to": "+33612345678", "body": "Sale"},
    )
    assert sent.json()["status"] == "suppressed"

    back = await client.put(
        "/api/v1/consent/+33612345678", json={"sender": SENDER, "status": "opted_in"}
    )
    assert back.json()["opted_out_of"] == []
    assert [h["action"] for h in back.json()["history"]] == ["opted_in", "opted_out"]
    again = await client.post(
        "/api/v1/messages",
        json={"surface_id": surface["id"], "to": "+33612345678", "body": "Sale"},
    )
    assert again.json()["status"] == "queued"


async def test_export_lists_current_opt_outs(client: httpx.AsyncClient) -> None:
    for number in ("+33612345601", "+33612345602", "+33612345603"):
        await client.put(
            f"/api/v1/consent/{number}", json={"sender": "Acme", "status": "opted_out"}
        )
    await client.put("/api/v1/consent/+33612345602", json={"sender": "Acme", "status": "opted_in"})
    ndjson = await client.get("/api/v1/consent", params={"status": "opted_out"})
    assert ndjson.status_code == 200
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert [(x["sender"], x["phone"], x["source"]) for x in lines] == [
        ("Acme", "+33612345601", "admin"),
        ("Acme", "+33612345603", "admin"),
    ]
    as_csv = await client.get("/api/v1/consent", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["phone"] for r in rows] == ["+33612345601", "+33612345603"]
    assert (await client.get("/api/v1/consent", params={"format": "xml"})).status_code == 422
    assert (await client.get("/api/v1/consent", params={"status": "opted_in"})).status_code == 422


async def test_consent_roles_and_bad_input(client: httpx.AsyncClient, services: Services) -> None:
    viewer = await _key(services, "viewer")
    sender = await _key(services, "sender")
    assert (await client.get("/api/v1/consent/+33612345678", headers=viewer)).status_code == 200
    body = {"sender": "Acme", "status": "opted_out"}
    denied = await client.put("/api/v1/consent/+33612345678", json=body, headers=sender)
    assert denied.status_code == 403
    bad_phone = await client.put("/api/v1/consent/12", json=body)
    assert bad_phone.status_code == 422
    assert bad_phone.json()["errors"][0]["field"] == "phone"
    bad_sender = await client.put(
        "/api/v1/consent/+33612345678",
        json={"sender": "not a valid sender id!", "status": "opted_out"},
    )
    assert bad_sender.status_code == 422
    assert bad_sender.json()["errors"][0]["field"] == "sender"
    bad_status = await client.put(
        "/api/v1/consent/+33612345678", json={"sender": "Acme", "status": "maybe"}
    )
    assert bad_status.status_code == 422
