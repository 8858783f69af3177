"""The retry policy: a pure function from an attempt's outcome to a decision.

It never sleeps and never reads the clock: ``now`` and the random source are passed in, so
every delay is reproducible in tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum


class OutcomeKind(StrEnum):
    ACCEPTED = "accepted"
    """2xx."""
    REJECTED = "rejected"
    """An HTTP error status (its code in ``status``)."""
    UNREACHABLE = "unreachable"
    """No request went out: DNS failure, connection refused/reset, connect timeout."""
    AMBIGUOUS = "ambiguous"
    """The request went out but no complete response came back (read timeout, cut off)."""
    BLOCKED = "blocked"
    """Refused by the SSRF guard: retrying cannot help."""


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    status: int | None = None
    retry_after: float | None = None
    reason: str = ""

    @property
    def transient(self) -> bool:
        """A failure of the provider rather than of the message: unreachable, no complete
        answer, a server error (5xx) or throttling (429). Another try may succeed."""
        if self.kind is OutcomeKind.UNREACHABLE or self.kind is OutcomeKind.AMBIGUOUS:
            return True
        if self.kind is not OutcomeKind.REJECTED:
            return False
        status = self.status
        return status is None or status == 429 or status >= 500


class Verdict(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0
    reason: str = ""
    exhausted: bool = False
    """Failed only because the attempt budget ran out on transient failures."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    max_retry_after: float = 3600.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(n-1))]."""
        exponent = min(max(0, attempt - 1), 64)  # 2**64 · base is past any cap already
        ceiling = min(self.max_delay, self.base_delay * (2**exponent))
        return rng.uniform(0, ceiling)

    def decide(
        self, outcome: Outcome, *, attempt: int, retry_ambiguous: bool, rng: random.Random
    ) -> Decision:
        """What to do after attempt number ``attempt`` (1-based) ended with ``outcome``."""
        if outcome.kind is OutcomeKind.ACCEPTED:
            return Decision(Verdict.SENT)
        if outcome.kind is OutcomeKind.BLOCKED:
            return Decision(Verdict.FAIL, reason=outcome.reason)
        if not outcome.transient:  # a permanent refusal (4xx other than 429)
            return Decision(Verdict.FAIL, reason=outcome.reason)
        if outcome.kind is OutcomeKind.AMBIGUOUS and not retry_ambiguous:
            return Decision(
                Verdict.FAIL,
                reason=f"{outcome.reason}; not retried because retry_ambiguous is false",
            )
        if attempt >= self.max_attempts:
            return Decision(
                Verdict.FAIL,
                reason=f"{outcome.reason} (gave up after {attempt} attempts)",
                exhausted=True,
            )
        if outcome.status == 429 and outcome.retry_after is not None:
            delay = min(max(0.0, outcome.retry_after), self.max_retry_after)
        else:
            delay = self.backoff(attempt, rng)
        return Decision(Verdict.RETRY, delay=delay, reason=outcome.reason)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
