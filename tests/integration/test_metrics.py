"""``/metrics`` on SQLite and PostgreSQL: a campaign runs through the real fan-out, worker and
delivery-report webhook while Prometheus would scrape; the parsed figures match the campaign
report. Then who may read them: an API key of any role, or nobody on a separate listener."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services
from tests.mock_provider import MockProvider, Recorded, Reply

SENDER = "+15550001111"
REFUSED = ("+33612340000", "+33612340001")  # the provider refuses these numbers (400)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample by (name, labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


async def scrape(http: httpx.AsyncClient, services: Services) -> Samples:
    for refresher in services.metrics.refreshers:
        refresher.max_age = 0  # every scrape reads the database again (default: 5 s)
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def _respond(request: Recorded) -> Reply:
    to = json.loads(request.body)["to"]
    if to in REFUSED:
        return Reply(400, {"error": "invalid destination"})
    return Reply(200, {"id": f"prov-{to[-4:]}"})


async def _campaign(
    client: httpx.AsyncClient, mock_provider: MockProvider, phones: Iterable[str]
) -> tuple[str, dict[str, Any], str]:
    """A credential reading delivery reports, its surface, profiles and a launched campaign."""
    mock_provider.responder = _respond
    created = await client.post(
        "/api/v1/credentials",
        json={
            "name": "metered",
            "provider_url": f"{mock_provider.url}/send",
            "auth": {"type": "bearer", "token": "tok-live-abcdef123456"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "response": {"message_id_path": "$.id"},
            "delivery_reports": {
                "message_id_path": "$.ref",
                "status_path": "$.state",
                "status_map": {"DELIVRD": "delivered", "UNDELIV": "undelivered"},
            },
        },
    )
    assert created.status_code == 201, created.text
    credential_id = created.json()["id"]
    surface = await client.post(
        "/api/v1/surfaces",
        json={"name": "metered", "credential_id": credential_id, "sender": SENDER},
    )
    assert surface.status_code == 201, surface.text
    people = [{"external_id": f"p{n}", "phone": phone} for n, phone in enumerate(phones)]
    imported = await client.post(
        "/api/v1/profiles/import",
        content="".join(json.dumps(p) + "\n" for p in people).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert imported.json()["imported"] == len(people)
    campaign = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "spring",
            "surface_id": surface.json()["id"],
            "body": "Spring sale",
            "audience": {"all": True},
        },
    )
    campaign_id = campaign.json()["id"]
    assert (await client.post(f"/api/v1/campaigns/{campaign_id}/launch")).status_code == 202
    return credential_id, surface.json(), campaign_id


async def test_scraped_figures_match_the_campaign_report(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    phones = [*REFUSED, *(f"+3361234{n:04d}" for n in range(2, 10))]
    credential_id, surface, campaign_id = await _campaign(client, mock_provider, phones)
    await services.new_campaign_runner().run_once()

    fanned = await scrape(client, services)  # the campaign is queued, nothing sent yet
    assert value(fanned, "smsbridge_fanout_messages_total") == len(phones)
    assert value(fanned, "smsbridge_outbox_messages", state="due") == len(phones)
    assert value(fanned, "smsbridge_outbox_oldest_due_age_seconds") >= 0
    assert total(fanned, "smsbridge_campaign_messages", status="queued") == len(phones)
    assert total(fanned, "smsbridge_send_attempts_total") == 0

    await services.new_worker().drain()
    hook = surface["status_webhook_url"][surface["status_webhook_url"].index("/hooks/") :]
    for ref, state in [("0002", "DELIVRD"), ("0003", "DELIVRD"), ("0004", "DELIVRD")]:
        answer = await client.post(hook, json={"ref": f"prov-{ref}", "state": state})
        assert answer.json()["applied"] == 1
    await client.post(hook, json={"ref": "prov-0005", "state": "UNDELIV"})
    await client.post(hook, json={"ref": "prov-0005", "state": "DELIVRD"})  # too late: ignored
    assert (await client.post("/hooks/status/no-such-token", json={})).status_code == 404

    report = (await client.get(f"/api/v1/campaigns/{campaign_id}/report")).json()
    assert (report["sent"], report["delivered"], report["bounced"], report["errors"]) == (
        8,
        3,
        1,
        2,
    )
    got = await scrape(client, services)
    by = {"credential": credential_id}
    # what the worker recorded, counted as it recorded it
    assert value(got, "smsbridge_messages_total", status="sent", **by) == report["sent"]
    assert value(got, "smsbridge_messages_total", status="failed", **by) == report["errors"]
    accepted = value(got, "smsbridge_send_attempts_total", outcome="accepted", **by)
    rejected = value(got, "smsbridge_send_attempts_total", outcome="rejected", **by)
    assert (accepted, rejected) == (report["sent"], report["errors"])
    latency_count = value(got, "smsbridge_provider_latency_seconds_count", **by)
    assert latency_count == accepted + rejected
    assert value(got, "smsbridge_claimed_messages_total") == len(phones)
    assert value(got, "smsbridge_claims_total") >= 1
    # the delivery reports, as the webhooks applied them
    applied = value(got, "smsbridge_delivery_reports_total", outcome="applied")
    assert applied == report["delivered"] + report["bounced"]
    assert value(got, "smsbridge_delivery_reports_total", outcome="ignored") == 1
    # ... and the statuses they moved messages to, by the messages' credential
    reported = {
        status: value(got, "smsbridge_messages_total", status=status, **by)
        for status in ("delivered", "undelivered")
    }
    assert reported == {"delivered": report["delivered"], "undelivered": report["bounced"]}
    assert value(got, "smsbridge_webhooks_received_total", kind="status", outcome="ok") == 5
    assert value(got, "smsbridge_webhooks_received_total", kind="status", outcome="not_found") == 1
    # what the database holds now, by status and credential
    counted = {
        status: value(got, "smsbridge_campaign_messages", status=status, **by)
        for status in ("sent", "delivered", "undelivered", "failed")
    }
    assert counted["delivered"] == report["delivered"]
    assert counted["undelivered"] == report["bounced"]
    assert counted["failed"] == report["errors"]
    assert counted["sent"] + counted["delivered"] + counted["undelivered"] == report["sent"]
    assert value(got, "smsbridge_outbox_messages", state="due") == 0
    assert value(got, "smsbridge_outbox_oldest_due_age_seconds") == 0
    # the worker's state: its send limit and a closed breaker for the credential
    assert value(got, "smsbridge_send_concurrency_limit", **by) >= 1
    assert value(got, "smsbridge_breaker_state", state="closed", **by) == 1
    assert value(got, "smsbridge_sends_in_flight", **by) == 0
    # bounded labels: credential ids, never a message id or a number
    assert not any("msg_" in v or "+336" in v for (_, ls) in got for _, v in ls)


async def test_a_breaker_that_opens_shows(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    mock_provider.reply(Reply(503, {"error": "down"}))
    credential = await client.post(
        "/api/v1/credentials",
        json={
            "name": "flaky",
            "provider_url": f"{mock_provider.url}/send",
            "auth": {"type": "none"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        },
    )
    surface = await client.post(
        "/api/v1/surfaces",
        json={"name": "flaky", "credential_id": credential.json()["id"], "sender": SENDER},
    )
    for n in range(3):
        sent = await client.post(
            "/api/v1/messages",
            json={"surface_id": surface.json()["id"], "to": f"+3361234{n:04d}", "body": "Hi"},
        )
        assert sent.status_code == 202
    await services.new_worker(breaker_threshold=2).drain()
    got = await scrape(client, services)
    by = {"credential": credential.json()["id"]}
    assert value(got, "smsbridge_breaker_state", state="open", **by) == 1
    assert value(got, "smsbridge_breaker_state", state="closed", **by) == 0
    assert value(got, "smsbridge_send_attempts_total", outcome="rejected", **by) >= 2
    # the three wait in the outbox, for a retry or for the breaker (one may already be due
    # again on a slow machine: a retry's delay is short and jittered)
    waiting = [value(got, "smsbridge_outbox_messages", state=s) for s in ("scheduled", "due")]
    assert sum(waiting) == 3
    assert value(got, "smsbridge_outbox_messages", state="leased") == 0


async def test_metrics_need_a_key_of_any_role(
    client: httpx.AsyncClient, services: Services
) -> None:
    assert (await client.get("/metrics", headers={"Authorization": ""})).status_code == 401
    wrong = {"Authorization": "Bearer not-a-key"}
    assert (await client.get("/metrics", headers=wrong)).status_code == 401
    for role in ("viewer", "sender", "admin"):
        key = await services.api_keys.create(f"scraper-{role}", role)
        answer = await client.get("/metrics", headers={"Authorization": f"Bearer {key.key}"})
        assert answer.status_code == 200
        assert "# TYPE smsbridge_send_attempts_total counter" in answer.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_separate_listener_serves_metrics_without_a_key(
    settings: Settings, services: Services
) -> None:
    separate = settings.model_copy(update={"metrics_listen": "127.0.0.1:0"})
    app = create_app(separate, prebuilt=services)
    async with app.router.lifespan_context(app):
        port = app.state.metrics_server.port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            answer = await http.get("/metrics")
            assert answer.status_code == 200
            samples = parse(answer.text)
            assert ("smsbridge_metrics_database_failures_total", frozenset()) in samples
            assert (await http.get("/admin")).status_code == 404  # metrics only
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as main:
            assert (await main.get("/metrics")).status_code == 401  # the API still asks a key
    with pytest.raises(httpx.ConnectError):  # closed with the application
        async with httpx.AsyncClient(timeout=2) as http:
            await http.get(f"http://127.0.0.1:{port}/metrics")


def test_metrics_listen_is_host_and_port() -> None:
    assert Settings(metrics_listen="0.0.0.0:9464").metrics_listen == "0.0.0.0:9464"
    assert Settings(metrics_listen="").metrics_listen is None
    for wrong in ("9464", "localhost", "host:port", "[::1]:99999"):
        with pytest.raises(ValueError, match="host:port"):
            Settings(metrics_listen=wrong)
