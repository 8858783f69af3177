"""Event deliveries at their edges, on SQLite and PostgreSQL (found in review): a host name the
HTTP client cannot encode, deliveries held back behind a rescheduled one, a disabled
endpoint's backlog, a delivery past its day, a replay's new day of retries, a quiet day
between two failures."""

from __future__ import annotations

# ruff: noqa: F811 (the fixture imported below is taken as a parameter)
from typing import Any

import httpx

from smsbridge.container import Services
from smsbridge.delivery.events import EventTransport
from tests.integration.test_event_endpoints import (  # noqa: F401 (fixture)
    PHONE,
    _endpoint,
    _send,
    _surface,
    receiver,
)
from tests.mock_provider import MockProvider, Reply


async def _log(client: httpx.AsyncClient, endpoint_id: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/event-endpoints/{endpoint_id}/deliveries")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_a_host_the_client_cannot_encode_is_refused_and_never_breaks_a_batch(
    client: httpx.AsyncClient, mock_provider: MockProvider
) -> None:
    """``app..example.com`` passed the URL check, then made aiohttp raise UnicodeError: the
    whole claimed batch lost its outcomes and was posted again every minute."""
    for url in ("https://app..example.com/cb", f"https://{'a' * 64}.example.com/cb"):
        refused = await client.post(
            "/api/v1/event-endpoints", json={"url": url, "event_types": ["*"]}
        )
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "url"
    surface = await _surface(client, mock_provider)
    sent = await client.post(
        "/api/v1/messages",
        json={
            "surface_id": surface["id"],
            "to": PHONE,
            "body": "hi",
            "callback_url": "https://app..example.com/cb",
        },
    )
    assert sent.status_code == 422 and sent.json()["errors"][0]["field"] == "callback_url"
    transport = EventTransport(allow_private=True)
    try:
        answer, _ = await transport.post("https://app..example.com/cb", {}, b"{}", timeout=2.0)
    finally:
        await transport.close()
    assert answer.status is None and answer.permanent


async def test_deliveries_held_back_wait_with_the_one_rescheduled(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    receiver: MockProvider,
) -> None:
    endpoint = await _endpoint(client, f"{receiver.url}/busy")
    surface = await _surface(client, mock_provider)
    receiver.reply(Reply(503, {"busy": True}, headers={"Retry-After": "120"}))
    await _send(client, surface, PHONE)
    await services.new_worker().drain()
    dispatcher = services.new_event_dispatcher()
    await dispatcher.tail_once()
    assert await dispatcher.deliver_once() == 1
    by_type = {d["type"]: d for d in await _log(client, endpoint["id"])}
    head, later = by_type["message.queued"], by_type["message.sent"]
    assert head["status"] == later["status"] == "pending"
    assert head["next_attempt_at"] is not None
    # the later one is due with its head, not before: claims do not step over it meanwhile
    assert later["next_attempt_at"] == head["next_attempt_at"]


async def test_a_disabled_endpoints_backlog_waits_and_goes_when_enabled(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    receiver: MockProvider,
) -> None:
    endpoint = await _endpoint(client, f"{receiver.url}/paused", ["message.queued"])
    surface = await _surface(client, mock_provider)
    await _send(client, surface, PHONE)
    dispatcher = services.new_event_dispatcher()
    await dispatcher.tail_once()
    paused = await client.patch(
        f"/api/v1/event-endpoints/{endpoint['id']}", json={"enabled": False}
    )
    assert paused.status_code == 200
    [waiting] = await _log(client, endpoint["id"])
    assert waiting["status"] == "pending" and waiting["next_attempt_at"] is None
    assert await dispatcher.deliver_once() == 0 and receiver.requests == []
    await client.patch(f"/api/v1/event-endpoints/{endpoint['id']}", json={"enabled": True})
    await dispatcher.drain()
    [sent] = await _log(client, endpoint["id"])
    assert sent["status"] == "delivered" and len(receiver.requests) == 1


async def test_a_delivery_past_its_day_is_given_up_without_being_posted(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    receiver: MockProvider,
) -> None:
    endpoint = await _endpoint(client, f"{receiver.url}/late", ["message.queued"])
    surface = await _surface(client, mock_provider)
    receiver.reply(Reply(503, {"busy": True}))
    await _send(client, surface, PHONE)
    dispatcher = services.new_event_dispatcher()
    await dispatcher.tail_once()
    assert await dispatcher.deliver_once() == 1
    a_day_earlier = (
        "UPDATE event_deliveries SET next_attempt_at = created_at,"
        " first_attempt_at = first_attempt_at - INTERVAL '25 hours'"
        if services.db.dialect == "postgresql"
        else "UPDATE event_deliveries SET next_attempt_at = created_at,"
        " first_attempt_at = datetime(first_attempt_at, '-25 hours')"
    )
    async with services.db.transaction() as conn:
        await conn.exec_driver_sql(a_day_earlier)
    receiver.reply(Reply(200, {}))
    assert await dispatcher.deliver_once() == 1
    [given_up] = await _log(client, endpoint["id"])
    assert given_up["status"] == "dead" and "its day had passed" in given_up["last_error"]
    assert len(receiver.requests) == 1  # the first attempt only: nothing posted a day late

    path = f"/api/v1/event-endpoints/{endpoint['id']}/deliveries/{given_up['id']}/replay"
    replayed = (await client.post(path)).json()
    assert replayed["status"] == "pending" and replayed["attempts"] == 0  # a new day
    await dispatcher.drain()
    assert (await _log(client, endpoint["id"]))[0]["status"] == "delivered"


async def test_two_failures_a_day_apart_with_nothing_between_do_not_disable(
    client: httpx.AsyncClient, services: Services, receiver: MockProvider
) -> None:
    """A day of failures disables an endpoint; one failure, a quiet day (nothing to retry),
    then another failure is not that: the second starts a new run."""
    endpoint = await _endpoint(client, f"{receiver.url}/quiet", ["campaign.completed"])
    path = f"/api/v1/event-endpoints/{endpoint['id']}"
    receiver.reply(Reply(500, {"down": True}))
    await client.post(f"{path}/test")
    first = (await client.get(path)).json()["failing_since"]
    assert first is not None

    pg = services.db.dialect == "postgresql"
    alone = (  # the failure was a day ago, alone
        "UPDATE event_endpoints SET failing_since = failing_since - INTERVAL '25 hours',"
        " last_failed_at = last_failed_at - INTERVAL '25 hours'"
        if pg
        else "UPDATE event_endpoints SET failing_since = datetime(failing_since, '-25 hours'),"
        " last_failed_at = datetime(last_failed_at, '-25 hours')"
    )
    async with services.db.transaction() as conn:
        await conn.exec_driver_sql(alone)
    await client.post(f"{path}/test")
    view = (await client.get(path)).json()
    assert view["enabled"] is True and view["disabled_reason"] is None
    assert view["failing_since"] >= first  # a new run, started by this failure

    # Failing on and off through the day, with no success, still disables it.
    a_day_of_failures = (
        "UPDATE event_endpoints SET failing_since = failing_since - INTERVAL '25 hours'"
        if pg
        else "UPDATE event_endpoints SET failing_since = datetime(failing_since, '-25 hours')"
    )
    async with services.db.transaction() as conn:
        await conn.exec_driver_sql(a_day_of_failures)
    await client.post(f"{path}/test")
    view = (await client.get(path)).json()
    assert view["enabled"] is False and "HTTP 500" in view["disabled_reason"]
