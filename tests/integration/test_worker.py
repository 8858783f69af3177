"""The delivery worker against a scripted loopback provider, with an injected clock.

Retry delays are read from the events and the clock is moved past them, so no test sleeps
for a backoff.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.delivery.worker import Worker
from smsbridge.domain.retry import RetryPolicy
from smsbridge.errors import Conflict
from smsbridge.services.messages import SendRequest
from tests.clock import FakeClock
from tests.mock_provider import MockProvider, Reply, scripted

TO = "+33612345678"


@dataclass
class Engine:
    services: Services
    clock: FakeClock
    provider: MockProvider
    surface_id: str
    credential_id: str

    def worker(self, **config: Any) -> Worker:
        policy = config.pop("policy", RetryPolicy())
        return self.services.new_worker(policy=policy, rng=random.Random(7), **config)

    async def send(self, body: str = "Hello", **kwargs: Any) -> str:
        request = SendRequest(
            surface_id=self.surface_id, to=kwargs.pop("to", TO), body=body, **kwargs
        )
        _, view = await self.services.messages.send(request)
        return str(view["id"])

    async def message(self, message_id: str) -> dict[str, Any]:
        return await self.services.messages.get(message_id)

    async def configure(self, **changes: Any) -> None:
        await self.services.credentials.update(self.credential_id, changes)


@pytest.fixture
async def engine(settings: Settings, mock_provider: MockProvider) -> AsyncIterator[Engine]:
    clock = FakeClock()
    services = await build_services(settings, clock=clock)
    credential = await services.credentials.create(
        {
            "name": "mock",
            "provider_url": f"{mock_provider.url}/send",
            "auth": {"type": "bearer", "token": "tok-worker-5566aa"},
            "payload": {
                "to": "{{toNumber}}",
                "from": "{{fromNumber}}",
                "text": "{{message}}",
                "ref": "{{messageId}}",
                "callback": "{{statusCallbackUrl}}",
            },
            "response": {"message_id_path": "$.id"},
            "timeout_seconds": 0.5,
        }
    )
    surface = await services.surfaces.create(
        {"name": "main", "credential_id": credential.id, "sender": "+15550001111"}
    )
    try:
        yield Engine(services, clock, mock_provider, surface.id, credential.id)
    finally:
        await services.close()


def _types(view: dict[str, Any]) -> list[str]:
    return [e["type"] for e in view["events"]]


def _event(view: dict[str, Any], kind: str) -> dict[str, Any]:
    return [e for e in view["events"] if e["type"] == kind][-1]


async def test_success_records_provider_id_and_events(engine: Engine) -> None:
    engine.provider.reply(Reply(200, {"id": "prov-77"}))
    message_id = await engine.send('Hi "Ana" 😀')
    await engine.worker().drain()

    view = await engine.message(message_id)
    assert view["status"] == "sent"
    assert view["attempts"] == 1
    assert view["provider_message_id"] == "prov-77"
    assert view["credential_id"] == engine.credential_id
    assert view["sent_at"] is not None
    assert _types(view) == ["queued", "attempt", "sent"]
    assert _event(view, "attempt")["detail"]["status_code"] == 200

    [request] = engine.provider.requests
    body = json.loads(request.body)
    assert body["text"] == 'Hi "Ana" 😀'
    assert body["ref"] == message_id
    surface = await engine.services.surfaces.get(engine.surface_id)
    assert body["callback"] == surface.status_webhook_url
    assert request.header("Authorization") == "Bearer tok-worker-5566aa"


@pytest.mark.parametrize("retry_after", ["7", "HTTPDATE"])
async def test_429_waits_for_retry_after(engine: Engine, retry_after: str) -> None:
    if retry_after == "HTTPDATE":
        from email.utils import format_datetime

        retry_after = format_datetime(engine.clock.now + timedelta(seconds=7), usegmt=True)
    engine.provider.responder = scripted(
        Reply(429, {"error": "slow down"}, headers={"Retry-After": retry_after}),
        Reply(200, {"id": "ok-1"}),
    )
    message_id = await engine.send()
    worker = engine.worker()
    await worker.drain()

    view = await engine.message(message_id)
    assert view["status"] == "queued"
    assert view["last_error"] == "provider rate limit reached (429)"
    retry = _event(view, "retry_scheduled")["detail"]
    assert retry == {"reason": "provider rate limit reached (429)", "delay": 7.0}

    engine.clock.advance(6.5)
    await worker.drain()
    assert len(engine.provider.requests) == 1  # not due yet

    engine.clock.advance(0.6)
    await worker.drain()
    view = await engine.message(message_id)
    assert view["status"] == "sent"
    assert view["attempts"] == 2
    assert _types(view) == ["queued", "attempt", "retry_scheduled", "attempt", "sent"]


async def test_server_error_then_success_backs_off(engine: Engine) -> None:
    engine.provider.responder = scripted(Reply(503, {}), Reply(502, {}), Reply(200, {"id": "x"}))
    message_id = await engine.send()
    worker = engine.worker(policy=RetryPolicy(base_delay=2.0))
    delays = []
    for _ in range(3):
        await worker.drain()
        view = await engine.message(message_id)
        if view["status"] == "sent":
            break
        delay = _event(view, "retry_scheduled")["detail"]["delay"]
        delays.append(delay)
        engine.clock.advance(delay + 0.001)
    assert view["status"] == "sent"
    assert view["attempts"] == 3
    assert len(delays) == 2
    assert 0 <= delays[0] <= 2.0  # full jitter under base * 2^0
    assert 0 <= delays[1] <= 4.0  # then under base * 2^1
    assert len(engine.provider.requests) == 3


async def test_client_error_fails_at_once_with_a_short_reason(engine: Engine) -> None:
    engine.provider.reply(Reply(401, {"error": "bad token tok-worker-5566aa"}))
    message_id = await engine.send()
    await engine.worker().drain()
    view = await engine.message(message_id)
    assert view["status"] == "failed"
    assert view["attempts"] == 1
    assert view["last_error"] == "provider rejected the credentials (401)"
    assert "tok-worker" not in json.dumps(view, default=str)
    assert _types(view) == ["queued", "attempt", "failed"]


async def test_slow_response_is_ambiguous_and_retried_by_default(engine: Engine) -> None:
    engine.provider.responder = scripted(
        Reply(200, {"id": "late"}, delay=1.5), Reply(200, {"id": "ok"})
    )
    message_id = await engine.send()
    worker = engine.worker()
    await worker.drain()
    view = await engine.message(message_id)
    assert view["status"] == "queued"
    assert "within 0.5s" in _event(view, "attempt")["detail"]["error"]
    engine.clock.advance(_event(view, "retry_scheduled")["detail"]["delay"] + 0.001)
    await worker.drain()
    view = await engine.message(message_id)
    assert view["status"] == "sent"
    assert view["provider_message_id"] == "ok"
    assert len(engine.provider.requests) == 2  # the ambiguous attempt did reach the provider


async def test_ambiguous_is_not_retried_when_the_credential_says_so(engine: Engine) -> None:
    await engine.configure(retry_ambiguous=False)
    engine.provider.reply(Reply(200, {"id": "late"}, delay=1.5))
    message_id = await engine.send()
    await engine.worker().drain()
    view = await engine.message(message_id)
    assert view["status"] == "failed"
    assert "retry_ambiguous is false" in view["last_error"]
    assert len(engine.provider.requests) == 1


async def test_connection_closed_mid_response_is_retried(engine: Engine) -> None:
    engine.provider.responder = scripted(Reply(close=True), Reply(200, {"id": "second"}))
    message_id = await engine.send()
    worker = engine.worker()
    await worker.drain()
    view = await engine.message(message_id)
    assert view["status"] == "queued"
    assert "closed the connection" in view["last_error"]
    engine.clock.advance(_event(view, "retry_scheduled")["detail"]["delay"] + 0.001)
    await worker.drain()
    assert (await engine.message(message_id))["status"] == "sent"


async def test_unreachable_provider_gives_up_after_max_attempts(engine: Engine) -> None:
    await engine.configure(
        provider_url="http://127.0.0.1:9/nothing",
        auth={"token": "tok-worker-5566aa"},  # another port: secrets are typed again
    )
    message_id = await engine.send()
    worker = engine.worker(policy=RetryPolicy(max_attempts=3))
    for _ in range(3):
        await worker.drain()
        view = await engine.message(message_id)
        if view["status"] != "queued":
            break
        engine.clock.advance(_event(view, "retry_scheduled")["detail"]["delay"] + 0.001)
    assert view["status"] == "failed"
    assert view["attempts"] == 3
    assert "gave up after 3 attempts" in view["last_error"]
    assert "connection refused" in view["last_error"]
    assert _types(view).count("attempt") == 3


async def test_vonage_style_refusal_inside_200_fails(engine: Engine) -> None:
    await engine.configure(
        response={"message_id_path": "$.id", "success_path": "$.status", "success_values": ["0"]}
    )
    engine.provider.reply(Reply(200, {"status": "2", "id": "v1"}))
    message_id = await engine.send()
    await engine.worker().drain()
    view = await engine.message(message_id)
    assert view["status"] == "failed"
    assert view["last_error"] == "provider refused the message (status 2)"


async def test_scheduled_message_is_sent_when_due(engine: Engine) -> None:
    message_id = await engine.send(send_at=engine.clock.now + timedelta(hours=1))
    worker = engine.worker()
    assert (await engine.message(message_id))["status"] == "scheduled"
    await worker.drain()
    assert engine.provider.requests == []
    engine.clock.advance(3600)
    await worker.drain()
    view = await engine.message(message_id)
    assert view["status"] == "sent"
    assert _types(view) == ["scheduled", "attempt", "sent"]


async def test_cancel_scheduled_then_nothing_is_sent(engine: Engine) -> None:
    message_id = await engine.send(send_at=engine.clock.now + timedelta(minutes=5))
    cancelled = await engine.services.messages.cancel(message_id)
    assert cancelled["status"] == "cancelled"
    engine.clock.advance(600)
    await engine.worker().drain()
    assert engine.provider.requests == []


async def test_a_message_being_sent_cannot_be_cancelled(engine: Engine) -> None:
    message_id = await engine.send()
    worker = engine.worker()
    assert await worker.claim(10) == 1
    with pytest.raises(Conflict):
        await engine.services.messages.cancel(message_id)


async def test_expired_lease_is_rescued_and_the_old_claim_is_fenced(engine: Engine) -> None:
    message_id = await engine.send()
    slow = engine.worker(lease=timedelta(seconds=30))
    fast = engine.worker(lease=timedelta(seconds=30))
    assert await slow.claim(10) == 1
    assert await fast.claim(10) == 0  # leased: not claimable
    engine.clock.advance(31)  # the slow worker's lease expires
    assert await fast.claim(10) == 1  # rescued by the other worker

    # both send; only the newer claim's result is recorded
    old = slow._queue.get_nowait()
    new = fast._queue.get_nowait()
    assert old is not None
    assert new is not None
    assert new.message.lease_token > old.message.lease_token
    engine.provider.responder = scripted(
        Reply(200, {"id": "from-old"}), Reply(200, {"id": "from-new"})
    )
    slow._done.append(await slow.process(old.message, old.credential))
    fast._done.append(await fast.process(new.message, new.credential))
    await fast._flush()
    await slow._flush()
    view = await engine.message(message_id)
    assert view["status"] == "sent"
    assert view["provider_message_id"] == "from-new"
    assert _types(view) == ["queued", "attempt", "sent"]


async def test_sandbox_sends_through_the_worker(engine: Engine) -> None:
    sandbox = await engine.services.credentials.create({"name": "sbx", "preset": "sandbox"})
    surface = await engine.services.surfaces.create(
        {"name": "sbx", "credential_id": sandbox.id, "sender": "Acme"}
    )
    ok = (await engine.services.messages.send(SendRequest(surface.id, TO, "hi")))[1]["id"]
    refused = (await engine.services.messages.send(SendRequest(surface.id, "+33612340000", "hi")))[
        1
    ]["id"]
    await engine.worker().drain()
    sent = await engine.message(ok)
    assert sent["status"] == "sent"
    assert sent["provider_message_id"].startswith("sbx_")
    failed = await engine.message(refused)
    assert failed["status"] == "failed"
    assert failed["last_error"] == "provider refused the request (400)"


async def test_graceful_stop_finishes_in_flight_and_releases_the_rest(engine: Engine) -> None:
    engine.provider.reply(Reply(200, {"id": "p"}, delay=0.3))
    ids = [await engine.send(f"m{i}") for i in range(12)]
    worker = engine.worker(concurrency=2, batch_size=12, max_in_flight=12, poll_interval=0.05)
    task = asyncio.create_task(worker.run())
    while len(engine.provider.requests) < 2:
        await asyncio.sleep(0.01)
    worker.stop()
    await asyncio.wait_for(task, 10)

    views = [await engine.message(i) for i in ids]
    statuses = [v["status"] for v in views]
    assert "sending" not in statuses
    sent = [v for v in views if v["status"] == "sent"]
    queued = [v for v in views if v["status"] == "queued"]
    assert len(sent) == len(engine.provider.requests)  # every started send was recorded
    assert 2 <= len(sent) < 12
    assert len(sent) + len(queued) == 12
    assert all(_types(v)[-1] == "released" for v in queued)

    # released messages are claimable again at once
    await engine.worker().drain()
    assert [(await engine.message(i))["status"] for i in ids] == ["sent"] * 12


async def test_running_worker_is_woken_by_an_enqueue(engine: Engine) -> None:
    worker = engine.services.new_worker(poll_interval=30.0)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.1)
        message_id = await engine.send()
        for _ in range(200):
            if (await engine.message(message_id))["status"] == "sent":
                break
            await asyncio.sleep(0.02)
        assert (await engine.message(message_id))["status"] == "sent"
    finally:
        worker.stop()
        await task


async def test_rate_limit_holds_across_two_workers(engine: Engine) -> None:
    await engine.configure(rate_limit_per_second=20)
    ids = [await engine.send(f"r{i}") for i in range(50)]
    workers = [engine.worker(poll_interval=0.02, batch_size=5, max_in_flight=10) for _ in range(2)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        while len(engine.provider.requests) < 50:
            await asyncio.sleep(0.05)
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
    times = sorted(r.at for r in engine.provider.requests)
    worst = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    print(f"max requests in any 1 s window: {worst} (limit 20)")
    # arrival jitter may add a request or two; a per-worker limit would allow ~40
    assert worst <= 23
    assert all(w.sent > 0 for w in workers)  # both took part
    assert sorted(json.loads(r.body)["ref"] for r in engine.provider.requests) == sorted(ids)


async def _opt_out(engine: Engine, number: str) -> None:
    from sqlalchemy import insert

    from smsbridge.storage.tables import suppressions

    async with engine.services.db.transaction() as conn:
        await conn.execute(
            insert(suppressions).values(
                sender="+15550001111",
                phone=number,
                source="keyword",
                keyword="STOP",
                created_at=engine.clock(),
            )
        )


async def test_stop_after_enqueue_means_no_request_and_suppressed(engine: Engine) -> None:
    kept = await engine.send("Still welcome", to="+33612345679")
    stopped = await engine.send("Sale!")
    await _opt_out(engine, TO)  # STOP arrives after the message was accepted
    await engine.worker().drain()
    assert [json.loads(r.body)["to"] for r in engine.provider.requests] == ["+33612345679"]
    view = await engine.message(stopped)
    assert view["status"] == "suppressed"
    assert _types(view) == ["queued", "suppressed"]
    assert view["attempts"] == 0
    assert (await engine.message(kept))["status"] == "sent"


async def test_a_delivery_report_during_the_send_is_not_overwritten(engine: Engine) -> None:
    from smsbridge.domain.messages import MessageStatus

    async def deliver_first(request: Any) -> Reply:
        # The provider reports delivery before its answer to the send is even recorded.
        ref = json.loads(request.body)["ref"]
        assert await engine.services.messages.record_delivery(ref, MessageStatus.DELIVERED)
        return Reply(200, {"id": "prov-race"})

    engine.provider.responder = deliver_first
    message_id = await engine.send("Hello")
    await engine.worker().drain()
    view = await engine.message(message_id)
    assert view["status"] == "delivered"
    assert view["provider_message_id"] == "prov-race"
    assert _types(view)[-3:] == ["delivered", "attempt", "sent"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"code": 21610, "message": "Attempt to send to unsubscribed recipient"}, "21610"),
        ({"errors": [{"code": "40300", "title": "Blocked due to STOP message"}]}, "40300"),
    ],
)
async def test_provider_opt_out_errors_suppress_the_number(
    engine: Engine, body: dict[str, Any], code: str
) -> None:
    await engine.configure(opt_out_error_codes=[code])
    engine.provider.reply(Reply(400, body))
    first = await engine.send("Sale")
    await engine.worker().drain()
    view = await engine.message(first)
    assert view["status"] == "suppressed"
    assert code in view["last_error"]
    assert _types(view) == ["queued", "attempt", "suppressed"]
    consent = await engine.services.consent.status(TO)
    assert [(s["sender"], s["source"]) for s in consent["opted_out_of"]] == [
        ("+15550001111", "provider")
    ]
    second = await engine.send("Sale again")
    assert (await engine.message(second))["status"] == "suppressed"
    assert len(engine.provider.requests) == 1


async def test_other_provider_errors_do_not_suppress(engine: Engine) -> None:
    await engine.configure(opt_out_error_codes=["21610"])
    engine.provider.reply(Reply(400, {"code": 21211, "message": "Invalid 'To' Phone Number"}))
    message_id = await engine.send("Sale")
    await engine.worker().drain()
    assert (await engine.message(message_id))["status"] == "failed"
    assert (await engine.services.consent.status(TO))["opted_out_of"] == []
