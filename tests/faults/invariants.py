"""What must hold after any fault, checked against the database and the provider's own log.

* every accepted message is terminal (nothing left scheduled, queued or sending);
* the provider accepted each message at most once, except where the first answer was lost
  (ambiguous: a timeout after the request went out, a connection cut mid-response, a worker
  killed between the answer and the write) — those repeats are counted and must stay within
  the budget the test states;
* a message that ended ``sent``/``delivered``/``undelivered`` reached the provider; a
  ``failed``, ``suppressed`` or ``cancelled`` one was never accepted by it;
* no request for a number after it opted out, for a campaign message not yet due;
* a campaign's report equals a count of its messages and exclusions.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from smsbridge.container import Services
from smsbridge.storage.tables import campaign_exclusions, messages
from tests.mock_provider import Recorded

PENDING = {"scheduled", "queued", "sending"}
REACHED = {"sent", "delivered", "undelivered"}


@dataclass
class ProviderLog:
    """Per message reference, what the scripted provider answered to each request."""

    answers: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))

    def record(self, request: Recorded, answer: str) -> None:
        """``answer``: ``ok``, ``ambiguous`` (the caller cannot know) or a definite refusal
        (``error``, ``throttled``, ``refused``)."""
        self.answers[json.loads(request.body)["ref"]].append(answer)

    def accepted(self, ref: str) -> int:
        return sum(1 for a in self.answers.get(ref, []) if a in ("ok", "ambiguous"))


@dataclass
class Summary:
    messages: int
    statuses: collections.Counter[str]
    requests: int
    repeats: int


async def message_rows(services: Services) -> list[tuple[str, str, str]]:
    async with services.db.read() as conn:
        rows = await conn.execute(select(messages.c.id, messages.c.to_number, messages.c.status))
        return [(r[0], r[1], r[2]) for r in rows]


async def campaign_message_ids(services: Services, campaign_id: str | None) -> list[str]:
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(messages.c.id).where(messages.c.campaign_id == campaign_id)
        )
        return [r[0] for r in rows]


async def check(
    services: Services,
    log: ProviderLog,
    *,
    repeat_budget: int = 0,
    suppressed_before_claim: Iterable[str] = (),
    campaign_id: str | None = None,
) -> Summary:
    """``suppressed_before_claim``: numbers that opted out before ``campaign_id``'s messages to
    them were due (the opt-out's own reply is not one of those)."""
    rows = await message_rows(services)
    counts = collections.Counter(status for _, _, status in rows)
    stuck = {s: n for s, n in counts.items() if s in PENDING}
    assert not stuck, f"messages not terminal: {stuck}"

    repeats = 0
    for message_id, _to, status in rows:
        accepted = log.accepted(message_id)
        if status in REACHED:
            assert accepted >= 1, f"{message_id} is {status} but the provider never took it"
            repeats += accepted - 1
        else:
            clean = log.answers.get(message_id, []).count("ok")
            if clean:
                history = (await services.messages.get(message_id))["events"]
                raise AssertionError(f"{message_id} is {status} but was accepted: {history}")
            repeats += accepted
    assert repeats <= repeat_budget, f"{repeats} repeated sends (allowed {repeat_budget})"

    unknown = set(log.answers) - {message_id for message_id, _, _ in rows}
    assert not unknown, f"the provider got requests for unknown messages: {sorted(unknown)[:5]}"

    stopped = set(suppressed_before_claim)
    in_campaign = set(await campaign_message_ids(services, campaign_id)) if stopped else set()
    for message_id, to, status in rows:
        if to in stopped and message_id in in_campaign:
            assert status == "suppressed", (message_id, to, status)
            assert message_id not in log.answers, f"{to} opted out but {message_id} was sent"
    return Summary(len(rows), counts, sum(len(a) for a in log.answers.values()), repeats)


async def check_campaign_report(services: Services, campaign_id: str) -> dict[str, int]:
    """The report's numbers equal a count of the campaign's rows."""
    report = await services.reports.campaign(campaign_id)
    async with services.db.read() as conn:
        by_status = collections.Counter(
            {
                r[0]: r[1]
                for r in await conn.execute(
                    select(messages.c.status, func.count())
                    .where(messages.c.campaign_id == campaign_id)
                    .group_by(messages.c.status)
                )
            }
        )
        excluded = (
            await conn.execute(
                select(func.count())
                .select_from(campaign_exclusions)
                .where(campaign_exclusions.c.campaign_id == campaign_id)
            )
        ).scalar_one()
    expected = {
        "targeted": sum(by_status.values()) + excluded,
        "excluded": excluded,
        "sent": sum(by_status[s] for s in REACHED),
        "delivered": by_status["delivered"],
        "bounced": by_status["undelivered"],
        "errors": by_status["failed"],
        "suppressed": by_status["suppressed"],
    }
    actual = {name: report[name] for name in expected}
    assert actual == expected
    return actual
