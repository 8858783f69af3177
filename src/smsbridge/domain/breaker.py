"""Circuit breakers, one per credential: a pure state machine; the caller passes the time.

::

    closed ──(N transient failures in a row)──▶ open ──(cool-down passed)──▶ half-open
      ▲                                          ▲                              │
      └─────────────── probe succeeds ───────────┼───────── probe fails ────────┘

* **closed**: every request goes through. Transient failures in a row are counted (5xx, 429,
  unreachable, no complete answer; see :attr:`Outcome.transient`); any answer showing that the
  provider is up, an acceptance or a permanent refusal, resets the count.
* **open**: nothing goes through until the cool-down has passed.
* **half-open**: exactly one probe goes through. Its success closes the breaker, its failure
  opens it again for another cool-down. A probe that never reports back (its sender crashed)
  stops holding the slot after one cool-down, and another probe is let through.

A breaker only says whether a credential should be tried now; the worker decides what to do
when it should not (try a fallback credential, or send anyway when there is none). Breakers
live in memory: each worker process judges the providers from its own requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    """Transient failures in a row (while closed)."""
    since: datetime | None = None
    """When it opened, or when the half-open probe was let through."""

    def allow(self, now: datetime) -> bool:
        """Whether a request may go through now; in half-open, granting it takes the probe."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.since is not None and now - self.since < self.cooldown:
            return False
        self.state = BreakerState.HALF_OPEN
        self.since = now
        return True

    def succeeded(self) -> None:
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.since = None

    def failed(self, now: datetime) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._open(now)
        elif self.state is BreakerState.CLOSED:
            self.failures += 1
            if self.failures >= self.threshold:
                self._open(now)
        # already open: a request let through before it opened, or sent for want of another

    def _open(self, now: datetime) -> None:
        self.state = BreakerState.OPEN
        self.failures = 0
        self.since = now


class CircuitBreakers:
    """The breakers of every credential, by credential id. A credential without an entry is
    closed with no failures counted, so the common case, success, costs one dict lookup."""

    def __init__(self, *, threshold: int = 5, cooldown: timedelta = timedelta(seconds=30)) -> None:
        if threshold < 1:
            raise ValueError("a breaker threshold is at least 1")
        self.threshold = threshold
        self.cooldown = cooldown
        self._breakers: dict[str, CircuitBreaker] = {}

    def allow(self, credential_id: str, now: datetime) -> bool:
        breaker = self._breakers.get(credential_id)
        return breaker is None or breaker.allow(now)

    def succeeded(self, credential_id: str) -> None:
        self._breakers.pop(credential_id, None)

    def failed(self, credential_id: str, now: datetime) -> None:
        breaker = self._breakers.get(credential_id)
        if breaker is None:
            breaker = CircuitBreaker(self.threshold, self.cooldown)
            self._breakers[credential_id] = breaker
        breaker.failed(now)

    def state(self, credential_id: str) -> BreakerState:
        breaker = self._breakers.get(credential_id)
        return BreakerState.CLOSED if breaker is None else breaker.state

    def states(self) -> dict[str, BreakerState]:
        """The state of every credential that failed since it last succeeded (the others
        are closed)."""
        return {key: breaker.state for key, breaker in self._breakers.items()}
