"""Provider webhooks taken in under load, against a real ``smsbridge serve``: "2xx means
applied" holds across a ``kill -9``, and a STOP is in force as soon as it is answered.

Delivery reports and inbound messages are applied by group commit (one transaction for the
webhooks that arrived together), and each webhook is answered only once the transaction holding
it has committed. So when the server dies mid-intake, a report answered 2xx must already be in
the database (the provider will not send it again), and one that got no answer may or may not
be: the provider retries it, and the retry must not apply it a second time.

The bodies are Infobip's (``{"results": [...]}``, read with the preset's mappings), the server a
subprocess on the test's database (SQLite, and PostgreSQL when present: always in CI).
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import bindparam, func, select, update

from smsbridge.container import Services
from smsbridge.domain.surfaces import DEFAULT_REPLIES
from smsbridge.storage.tables import early_delivery_reports, message_events, messages, outbox
from tests.conftest import ADMIN_KEY
from tests.mock_provider import MockProvider, Recorded, Reply
from tests.workers import WorkerProcesses, enqueue, wait_until_done

JSON = {"Content-Type": "application/json"}
SENDER = "Acme"
PROMO = "Spring sale: 20% off everything this weekend"


# --- set-up --------------------------------------------------------------------------------


def infobip_answer(request: Recorded) -> Reply:
    """What Infobip's ``POST /sms/3/messages`` answers: the ``messageId`` we gave, echoed."""
    destination = json.loads(request.body)["messages"][0]["destinations"][0]
    return Reply(
        200,
        {
            "bulkId": "bulk-1",
            "messages": [
                {
                    "messageId": destination["messageId"],
                    "destination": destination["to"],
                    "status": {"groupId": 1, "groupName": "PENDING", "id": 26},
                }
            ],
        },
    )


async def infobip_surfaces(
    services: Services, provider: MockProvider, *kinds: str
) -> list[tuple[str, str, str]]:
    """An Infobip-preset credential on the mock provider and a surface per message type in
    ``kinds``, all with the same sender; (surface id, status hook path, inbound hook path)."""
    provider.responder = infobip_answer
    credential = await services.credentials.create(
        {
            "preset": "infobip",
            "name": "infobip",
            "provider_url": f"{provider.url}/sms/3/messages",
            "auth": {"token": "ib-key-5f4e3d2c1b"},
        }
    )
    made = []
    for kind in kinds:
        surface = await services.surfaces.create(
            {"name": kind, "credential_id": credential.id, "sender": SENDER, "message_type": kind}
        )
        status = surface.status_webhook_url
        inbound = surface.inbound_webhook_url
        made.append(
            (surface.id, status[status.index("/hooks/") :], inbound[inbound.index("/hooks/") :])
        )
    return made


async def sent_messages(services: Services, surface_id: str, count: int) -> list[str]:
    """``count`` messages of the surface in ``sent`` status, as the worker leaves them once the
    provider accepted them; their provider ids, in order."""
    ids = await enqueue(services, surface_id, count)
    now = datetime.now(UTC)
    rows = [{"b_id": message_id, "b_pid": f"ib-{n:06d}"} for n, message_id in enumerate(ids)]
    async with services.db.transaction() as conn:
        await conn.execute(outbox.delete())
        await conn.execute(
            update(messages)
            .where(messages.c.id == bindparam("b_id"))
            .values(
                status="sent",
                provider_message_id=bindparam("b_pid"),
                attempts=1,
                sent_at=now,
                updated_at=now,
            ),
            rows,
        )
    return [row["b_pid"] for row in rows]


def report_body(provider_ids: Sequence[str]) -> bytes:
    """Infobip's delivery report webhook for these messages, all delivered."""
    results = [
        {
            "bulkId": "bulk-1",
            "messageId": provider_id,
            "to": "33610000000",
            "sentAt": "2026-12-02T10:00:00.000+0000",
            "doneAt": "2026-12-02T10:00:02.000+0000",
            "smsCount": 1,
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": {
                "groupId": 3,
                "groupName": "DELIVERED",
                "id": 5,
                "name": "DELIVERED_TO_HANDSET",
                "description": "Message delivered to handset",
            },
            "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"},
        }
        for provider_id in provider_ids
    ]
    return json.dumps({"results": results}).encode()


def stop_body(number: str, n: int) -> bytes:
    """Infobip's inbound webhook: ``STOP`` from ``number`` (sent as digits, as Infobip does)."""
    item = {
        "messageId": f"mo-{n}",
        "from": number.removeprefix("+"),
        "to": SENDER,
        "text": "STOP",
        "cleanText": "STOP",
        "keyword": "STOP",
        "receivedAt": "2026-12-02T10:00:00.000+0000",
        "smsCount": 1,
    }
    return json.dumps({"results": [item], "messageCount": 1, "pendingMessageCount": 0}).encode()


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# --- what the database holds ---------------------------------------------------------------


async def message_statuses(services: Services, surface_id: str) -> dict[str, str]:
    """Provider id → status, for the surface's messages."""
    query = select(messages.c.provider_message_id, messages.c.status).where(
        messages.c.surface_id == surface_id
    )
    async with services.db.read() as conn:
        return {row[0]: row[1] for row in await conn.execute(query)}


async def delivered_events(services: Services) -> collections.Counter[str]:
    """Provider id → how many ``delivered`` events its message has."""
    query = (
        select(messages.c.provider_message_id, func.count())
        .select_from(message_events.join(messages, messages.c.id == message_events.c.message_id))
        .where(message_events.c.type == "delivered")
        .group_by(messages.c.provider_message_id)
    )
    async with services.db.read() as conn:
        return collections.Counter({row[0]: row[1] for row in await conn.execute(query)})


async def parked_reports(services: Services) -> int:
    query = select(func.count()).select_from(early_delivery_reports)
    async with services.db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


# --- kill -9 mid-intake --------------------------------------------------------------------

MESSAGES = 3_000
PER_BODY = 10
CONNECTIONS = 32
KILL_AFTER = 80
"""Bodies answered before the server is killed (of 300): the kill lands mid-intake."""


async def test_every_report_answered_2xx_survives_a_kill_9(
    services: Services, mock_provider: MockProvider, processes: WorkerProcesses
) -> None:
    [(surface_id, status_hook, _)] = await infobip_surfaces(
        services, mock_provider, "transactional"
    )
    bodies = chunks(await sent_messages(services, surface_id, MESSAGES), PER_BODY)
    base = await processes.start_server()
    server = processes.procs[-1]
    answers: dict[int, dict[str, Any]] = {}  # body → what a 2xx said
    other_statuses: collections.Counter[int] = collections.Counter()
    unanswered: list[int] = []
    queue: Iterator[int] = iter(range(len(bodies)))
    killed = asyncio.Event()

    async def connection(http: httpx.AsyncClient) -> None:
        for index in queue:
            if killed.is_set():
                unanswered.append(index)  # never posted before the crash
                continue
            try:
                response = await http.post(
                    base + status_hook, content=report_body(bodies[index]), headers=JSON
                )
            except httpx.TransportError:
                unanswered.append(index)
                continue
            if response.status_code != 200:
                other_statuses[response.status_code] += 1
                unanswered.append(index)
                continue
            answers[index] = response.json()
            if len(answers) >= KILL_AFTER and not killed.is_set():
                killed.set()
                server.kill()  # SIGKILL, while the other connections' webhooks are in flight
                await server.wait()

    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.gather(*(connection(http) for _ in range(CONNECTIONS)))
    assert other_statuses == {}, "every webhook answered before the kill is a 200"
    assert server.returncode is not None, "the server was killed mid-intake"
    assert len(answers) >= KILL_AFTER and unanswered

    # The database as the dead server left it: every report answered 2xx is applied, once.
    statuses = await message_statuses(services, surface_id)
    events = await delivered_events(services)
    for index, answer in answers.items():
        assert answer == {"received": PER_BODY, "applied": PER_BODY, "unknown": 0, "ignored": 0}
        for provider_id in bodies[index]:
            assert statuses[provider_id] == "delivered"
            assert events[provider_id] == 1
    assert max(events.values()) == 1
    answered_ids = {pid for index in answers for pid in bodies[index]}
    applied_unanswered = sum(1 for pid in events if pid not in answered_ids)

    # The provider retries what got no answer (and replays a few answered ones): after a
    # restart, everything is delivered, and nothing twice.
    base = await processes.start_server()
    replays = sorted(answers)[:20]
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        retried = await asyncio.gather(
            *(
                http.post(base + status_hook, content=report_body(bodies[i]), headers=JSON)
                for i in [*unanswered, *replays]
            )
        )
    assert [r.status_code for r in retried] == [200] * len(retried)
    for index, response in zip([*unanswered, *replays], retried, strict=True):
        tally = response.json()
        assert tally["received"] == PER_BODY and tally["unknown"] == 0
        assert tally["applied"] + tally["ignored"] == PER_BODY
        if index in answers:
            assert tally["applied"] == 0  # a replay has no second effect
    assert sum(r.json()["applied"] for r in retried) == MESSAGES - len(events)
    assert set((await message_statuses(services, surface_id)).values()) == {"delivered"}
    events = await delivered_events(services)
    assert len(events) == MESSAGES and set(events.values()) == {1}
    assert await parked_reports(services) == 0
    print(
        f"\nkilled after {len(answers)} bodies answered 2xx; {len(unanswered)} unanswered "
        f"(their reports applied before the kill all the same: {applied_unanswered})"
    )


# --- STOP under load -----------------------------------------------------------------------

REPORTS = 6_000
STOPPERS = [f"+336700000{n:02d}" for n in range(4)]
STILL_SUBSCRIBED = [f"+336800000{n:02d}" for n in range(4)]


async def test_a_stop_answered_under_report_load_suppresses_the_next_marketing_message(
    services: Services, mock_provider: MockProvider, processes: WorkerProcesses
) -> None:
    (alerts, status_hook, _), (promo, _, inbound_hook) = await infobip_surfaces(
        services, mock_provider, "transactional", "marketing"
    )
    bodies = chunks(await sent_messages(services, alerts, REPORTS), PER_BODY * 2)
    base = await processes.start_server(with_worker=True)
    stopped = asyncio.Event()
    load_statuses: collections.Counter[int] = collections.Counter()
    posted_after_stop = [0]

    def schedule() -> Iterator[list[str]]:
        """Every body once, then replays, until the STOPs are checked: the load lasts as long
        as the checks, however fast either is."""
        n = 0
        while not (stopped.is_set() and n >= len(bodies)):
            yield bodies[n % len(bodies)]
            n += 1

    async def connection(http: httpx.AsyncClient, work: Iterator[list[str]]) -> None:
        for provider_ids in work:
            response = await http.post(
                base + status_hook, content=report_body(provider_ids), headers=JSON
            )
            load_statuses[response.status_code] += 1
            posted_after_stop[0] += stopped.is_set()

    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with (
        httpx.AsyncClient(limits=limits, timeout=30) as loader,
        httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as http,
    ):
        work = schedule()
        load = asyncio.gather(*(connection(loader, work) for _ in range(CONNECTIONS)))
        while sum(load_statuses.values()) < 20:  # the reports are flowing
            await asyncio.sleep(0.01)
        for n, (stopper, subscribed) in enumerate(zip(STOPPERS, STILL_SUBSCRIBED, strict=True)):
            stop = await http.post(inbound_hook, content=stop_body(stopper, n), headers=JSON)
            assert stop.status_code == 200, stop.text
            assert stop.json()["opt_outs"] == 1
            for number, expected in ((stopper, "suppressed"), (subscribed, "queued")):
                sent = await http.post(
                    "/api/v1/messages", json={"surface_id": promo, "to": number, "body": PROMO}
                )
                assert sent.status_code == 202, sent.text
                assert sent.json()["status"] == expected, number
        assert not load.done(), "the STOPs were taken while the reports were"
        stopped.set()
        await load
    assert set(load_statuses) == {200}
    await wait_until_done(services, 60, processes)  # the opt-out replies and the control sends

    texts: dict[str, list[str]] = collections.defaultdict(list)
    for request in mock_provider.requests:
        message = json.loads(request.body)["messages"][0]
        texts["+" + message["destinations"][0]["to"]].append(message["content"]["text"])
    for stopper, subscribed in zip(STOPPERS, STILL_SUBSCRIBED, strict=True):
        assert texts[stopper] == [DEFAULT_REPLIES["opt_out"]]  # the reply to STOP, nothing else
        assert texts[subscribed] == [PROMO]  # the control: what a stopper would have got
    statuses = await message_statuses(services, alerts)
    assert len(statuses) == REPORTS and set(statuses.values()) == {"delivered"}
    print(
        f"\n{sum(load_statuses.values())} report webhooks, {posted_after_stop[0]} after the STOPs"
    )
