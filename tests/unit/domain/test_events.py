"""Event endpoints' pure parts: the URL policy, event types, the retry schedule, signatures
(checked with the ``standardwebhooks`` library) and the cursor that waits for late commits."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from smsbridge.domain.events import (
    Answer,
    DeliveryStatus,
    check_event_types,
    check_event_url,
    excerpt,
    judge,
    new_secret,
    sign,
)
from smsbridge.domain.events_cursor import advance
from smsbridge.errors import InvalidInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "allow_private"),
    [
        ("http://127.0.0.1:9000/x", False),
        ("https://127.0.0.1/x", False),
        ("https://[::ffff:10.0.0.1]/x", False),
        ("https://localhost/x", False),
        ("https://169.254.169.254/x", True),
        ("https://u:p@example.com/x", True),
        ("sandbox://default", True),
        ("https://exa mple.com/", True),
        ("", True),
        (None, True),
        ("https://" + "a" * 3000 + ".com/", True),
    ],
)
def test_refused_urls_name_the_field(url: object, allow_private: bool) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_event_url(url, allow_private=allow_private, field="callback_url")
    assert [e.field for e in caught.value.errors] == ["callback_url"]


def test_accepted_urls() -> None:
    assert check_event_url(" https://hooks.example.com/in ", allow_private=False) == (
        "https://hooks.example.com/in"
    )
    assert check_event_url("http://127.0.0.1:9/x", allow_private=True) == "http://127.0.0.1:9/x"


def test_event_types() -> None:
    assert check_event_types(["message.sent", "message.sent"]) == ["message.sent"]
    assert check_event_types(["message.sent", "*"]) == ["*"]
    with pytest.raises(InvalidInput) as caught:
        check_event_types(["message.sent", "nope", 3])
    assert [e.field for e in caught.value.errors] == ["event_types[1]", "event_types[2]"]
    with pytest.raises(InvalidInput):
        check_event_types([])


def test_retry_schedule_and_refusals() -> None:
    rng = random.Random(1)
    ok = judge(Answer(204), attempts=1, first_attempt_at=T0, now=T0, rng=rng)
    assert ok.status is DeliveryStatus.DELIVERED
    for status in (400, 401, 404, 410, 301):
        verdict = judge(Answer(status), attempts=1, first_attempt_at=T0, now=T0, rng=rng)
        assert verdict.status is DeliveryStatus.FAILED
    blocked = Answer(None, "address refused", permanent=True)
    assert judge(blocked, attempts=1, first_attempt_at=T0, now=T0, rng=rng).status is (
        DeliveryStatus.FAILED
    )
    delays = []
    for attempts, answer in enumerate([Answer(503), Answer(408), Answer(None, "timeout")], 1):
        verdict = judge(answer, attempts=attempts, first_attempt_at=T0, now=T0, rng=rng)
        assert verdict.status is DeliveryStatus.PENDING and verdict.next_attempt_at is not None
        delays.append((verdict.next_attempt_at - T0).total_seconds())
    assert 9 <= delays[0] <= 11 and 54 <= delays[1] <= 66 and 270 <= delays[2] <= 330
    later = judge(Answer(429, retry_after=99999), attempts=2, first_attempt_at=T0, now=T0, rng=rng)
    assert later.next_attempt_at == T0 + timedelta(hours=2)  # Retry-After, bounded
    late = T0 + timedelta(hours=23)
    dead = judge(Answer(500), attempts=12, first_attempt_at=T0, now=late, rng=rng)
    assert dead.status is DeliveryStatus.DEAD


def test_signatures_verify_with_the_reference_library() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"message.sent","data":{"text":"\xc3\xa9 \\"q\\""}}'
    stamp = int(datetime.now(UTC).timestamp())
    header = sign([new, old], "evt_1", stamp, body)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(stamp), "webhook-signature": header}
    assert Webhook(old).verify(body, headers) == Webhook(new).verify(body, headers)


def test_excerpt_is_short_printable_and_redacted() -> None:
    text = excerpt(b"ok\x00\x1b[31m secret-123 " + b"x" * 10_000, ["secret-123"])
    assert len(text) == 300 and "secret-123" not in text and "\x00" not in text


def test_cursor_waits_for_late_ids_then_gives_up() -> None:
    position, gaps, lost = advance(10, [], [11, 14, 15], now=100.0)
    assert (position, gaps, lost) == (15, [[12.0, 13.0, 100.0]], 0)
    position, gaps, lost = advance(position, gaps, [13, 16], now=110.0)
    assert (position, gaps, lost) == (16, [[12.0, 12.0, 100.0]], 0)
    position, gaps, lost = advance(position, gaps, [], now=100.0 + 121)
    assert (position, gaps, lost) == (16, [], 1)
    many = advance(0, [], list(range(2, 4000, 2)), now=1.0, max_gaps=10)
    assert len(many[1]) == 10 and many[2] == 1989
