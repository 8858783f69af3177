"""A provider that misbehaves in every way a real one does, on a scripted mix: server errors,
429 with Retry-After, answers slower than the timeout, connections cut mid-response, outright
refusals. Driven by a fake clock, so backoffs pass at once and the run is deterministic."""

from __future__ import annotations

import collections
import json

from smsbridge.config import Settings
from smsbridge.container import build_services
from smsbridge.domain.retry import RetryPolicy
from smsbridge.services.messages import SendRequest
from tests.clock import FakeClock
from tests.faults import invariants
from tests.mock_provider import MockProvider, Recorded, Reply
from tests.workers import setup_surface

MESSAGES = 300


def _script(log: invariants.ProviderLog) -> object:
    """Message n's behaviour by n % 10; ``seen`` counts the requests for each message."""
    seen: collections.Counter[str] = collections.Counter()

    def answer(request: Recorded) -> Reply:
        ref = json.loads(request.body)["ref"]
        n = int(json.loads(request.body)["text"].split()[-1])
        seen[ref] += 1
        first = seen[ref] == 1
        kind = n % 10
        if kind == 1 and seen[ref] <= 2:  # two server errors, then fine
            log.record(request, "error")
            return Reply(503, {"error": "unavailable"})
        if kind == 2 and first:  # throttled, told when to come back
            log.record(request, "throttled")
            return Reply(429, {"error": "slow down"}, headers={"Retry-After": "2"})
        if kind == 3 and first:  # answers after the client gave up: ambiguous
            log.record(request, "ambiguous")
            return Reply(200, {"id": f"late-{ref}"}, delay=3.0)
        if kind == 4 and first:  # connection cut after the request arrived: ambiguous
            log.record(request, "ambiguous")
            return Reply(close=True)
        if kind == 5:  # a permanent refusal: failed at once, never retried
            log.record(request, "refused")
            return Reply(400, {"error": "invalid destination"})
        if kind == 6:  # down for good: retried until the attempts run out
            log.record(request, "error")
            return Reply(500, {"error": "boom"})
        log.record(request, "ok")
        return Reply(200, {"id": f"prov-{ref}"})

    return answer


async def test_scripted_provider_mix_loses_nothing(
    settings: Settings, mock_provider: MockProvider
) -> None:
    clock = FakeClock()
    services = await build_services(settings, clock=clock)
    log = invariants.ProviderLog()
    mock_provider.responder = _script(log)  # type: ignore[assignment]
    try:
        # a timeout far from both the normal answers and the late ones: a loaded CI machine
        # must not turn a normal answer into an ambiguous one
        surface_id = await setup_surface(services, mock_provider, "flaky", timeout_seconds=1.5)
        ids = await services.messages.enqueue_many(
            [SendRequest(surface_id, f"+3361{n:07d}", f"message {n}") for n in range(MESSAGES)]
        )
        worker = services.new_worker(concurrency=32, policy=RetryPolicy(max_attempts=4))
        for _ in range(40):
            await worker.drain()
            rows = await invariants.message_rows(services)
            if not any(status in invariants.PENDING for _, _, status in rows):
                break
            clock.advance(600)  # past any backoff or Retry-After
        summary = await invariants.check(
            services, log, repeat_budget=sum(1 for n in range(MESSAGES) if n % 10 in (3, 4))
        )
        by_kind: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for message_id in ids:
            view = await services.messages.get(message_id)
            by_kind[int(view["body"].split()[-1]) % 10][view["status"]] += 1
    finally:
        await services.close()

    print(f"\nprovider mix: {summary}; by kind: {dict(by_kind)}")
    assert len(ids) == MESSAGES == summary.messages
    assert summary.statuses == {"sent": 240, "failed": 60}
    assert by_kind[5] == {"failed": 30} and by_kind[6] == {"failed": 30}
    for kind in (0, 1, 2, 3, 4, 7, 8, 9):
        assert by_kind[kind] == {"sent": 30}, kind
    attempts = {ref: len(answers) for ref, answers in log.answers.items()}
    assert max(attempts.values()) == 4  # kind 6: exactly the attempt budget, no more
    # one request each, plus: kind 1 two errors, kinds 2-4 one lost or refused first answer,
    # kind 6 three retries; the permanent refusals (kind 5) are never retried
    assert summary.requests == MESSAGES + 30 * (2 + 1 + 1 + 1 + 3)
