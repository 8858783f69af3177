"""Send slots: how many sends a worker has in flight, per credential and in all.

Each credential's limit is an :class:`~smsbridge.delivery.adaptive.AdaptiveLimit`, fed with
every answer; all sends together stay under the worker's cap. A send takes a slot before it
waits for the credential's rate limit and gives it back once answered; a sender finding its
credential's slots taken waits in that credential's line (first come, first served), so a
throttled credential holds up its own messages only. Changes of a limit are logged (INFO,
rate-limited by :class:`~smsbridge.delivery.adaptive.ChangeLog`) and readable at any time
(:meth:`SendSlots.limits`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from smsbridge.delivery.adaptive import AdaptiveLimit, Change, ChangeLog
from smsbridge.domain.retry import Outcome, OutcomeKind
from smsbridge.observability.metrics import Gauge, Metrics

log = logging.getLogger("smsbridge.worker")


class SendingStopped(Exception):
    """Raised to a sender waiting for a slot when the worker stops: its message never
    started and goes back to the outbox."""


class Slot:
    """One send's hold on a slot, and what its answer taught (set by the sender)."""

    __slots__ = (
        "answered_ms",
        "in_flight",
        "key",
        "latency",
        "outcome",
        "overload",
        "rate_held",
        "started",
    )

    def __init__(self, key: str, started: float, in_flight: int) -> None:
        self.key = key
        self.started = started
        self.in_flight = in_flight
        self.rate_held = False
        """It waited for the credential's rate limit."""
        self.latency: float | None = None
        """Seconds the provider took to answer in a way that shows it coping."""
        self.overload = ""
        """What the provider answered that says "too much" (429, 5xx, timeout…)."""
        self.outcome = ""
        """How the send ended (an :class:`OutcomeKind`), once learnt: for the metrics."""
        self.answered_ms = 0.0

    def learn(self, outcome: Outcome, latency_ms: float) -> None:
        """Note what the send's ``outcome`` says about the provider's load."""
        self.outcome = outcome.kind.value
        self.answered_ms = latency_ms
        if outcome.transient:  # 429, 5xx, no complete answer, no connection
            if outcome.status is not None:
                self.overload = str(outcome.status)
            else:
                timed_out = outcome.kind is OutcomeKind.AMBIGUOUS
                self.overload = "timeout" if timed_out else "no connection"
        elif outcome.kind is OutcomeKind.ACCEPTED or outcome.kind is OutcomeKind.REJECTED:
            self.latency = latency_ms / 1000  # it answered, and in so much time


class _Credential:
    __slots__ = ("flying", "in_flight", "limiter", "waiters")

    def __init__(self, limiter: AdaptiveLimit, flying: Gauge | None) -> None:
        self.limiter = limiter
        self.in_flight = 0
        self.waiters: deque[asyncio.Future[Slot]] = deque()
        self.flying = flying
        """The credential's ``smsbridge_sends_in_flight`` gauge, when metrics are kept."""


class SendSlots:
    def __init__(
        self,
        *,
        initial: int,
        cap: int,
        clock: Callable[[], float] = time.monotonic,
        changes: ChangeLog | None = None,
    ) -> None:
        self._cap = max(1, cap)
        self._initial = max(1, min(initial, self._cap))
        self._clock = clock
        self._changes = changes or ChangeLog()
        self._credentials: dict[str, _Credential] = {}
        self._in_flight = 0
        self._closed = False
        self.waiting = 0
        """Senders waiting for a slot."""
        self.total_limit = self._initial
        """The sends all limits allow at once, within the cap (the starting value while no
        credential has sent)."""
        self.metrics: Metrics | None = None
        """Where each answered send's outcome and latency are counted, when set."""

    def limits(self) -> dict[str, int]:
        """The current send limit of every credential this worker has sent through."""
        return {key: state.limiter.limit for key, state in self._credentials.items()}

    async def acquire(self, key: str) -> Slot:
        """A slot for one send through credential ``key``; waits for one when they are all
        taken. Raises :class:`SendingStopped` once :meth:`close` was called."""
        if self._closed:
            raise SendingStopped
        state = self._credentials.get(key)
        if state is None:
            limiter = AdaptiveLimit(initial=self._initial, cap=self._cap, now=self._clock())
            flying = self.metrics.sends_in_flight.labels(key) if self.metrics else None
            state = self._credentials[key] = _Credential(limiter, flying)
            self._update_total()
        limit = state.limiter.limit
        if not state.waiters and state.in_flight < limit and self._in_flight < self._cap:
            return self._grant(key, state)
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        state.waiters.append(waiter)
        self.waiting += 1
        try:
            return await waiter
        except asyncio.CancelledError:
            if not waiter.cancelled() and waiter.done() and waiter.exception() is None:
                self.release(waiter.result())  # granted as it was cancelled: give it back
            elif waiter in state.waiters:
                state.waiters.remove(waiter)
                self.waiting -= 1
            raise

    def _grant(self, key: str, state: _Credential) -> Slot:
        state.in_flight += 1
        self._in_flight += 1
        if state.flying is not None:
            state.flying.inc()
        return Slot(key, self._clock(), state.in_flight)

    def release(self, slot: Slot) -> None:
        """Give ``slot`` back once its send is over, learning from its answer."""
        state = self._credentials[slot.key]
        state.in_flight -= 1
        self._in_flight -= 1
        if state.flying is not None:
            state.flying.dec()
        if slot.outcome and self.metrics is not None:
            self.metrics.attempted(slot.key, slot.outcome, slot.answered_ms)
        change: Change | None = None
        if slot.overload:
            change = state.limiter.overloaded(
                slot.overload, started=slot.started, now=self._clock()
            )
        elif slot.latency is not None:
            change = state.limiter.answered(
                slot.latency,
                started=slot.started,
                in_flight=slot.in_flight,
                rate_held=slot.rate_held,
                now=self._clock(),
            )
        if change is not None:
            self._update_total()
            self._report(slot.key, self._changes.changed(slot.key, change, self._clock()))
        elif self._changes.pending:
            self._report(slot.key, self._changes.due(slot.key, self._clock()))
        if self.waiting:
            self._wake()

    def _wake(self) -> None:
        """Hand free slots to waiting senders, credential by credential in turn."""
        progress = True
        while progress and self.waiting and self._in_flight < self._cap:
            progress = False
            for key, state in self._credentials.items():
                if state.waiters and state.in_flight < state.limiter.limit:
                    waiter = state.waiters.popleft()
                    self.waiting -= 1
                    progress = True
                    if waiter.done():  # its sender was cancelled while waiting
                        continue
                    waiter.set_result(self._grant(key, state))
                    if self._in_flight >= self._cap:
                        return

    def close(self) -> None:
        """Stop granting slots: every waiting sender gets :class:`SendingStopped`."""
        self._closed = True
        for state in self._credentials.values():
            while state.waiters:
                waiter = state.waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(SendingStopped())
        self.waiting = 0

    def _update_total(self) -> None:
        self.total_limit = min(
            self._cap, sum(state.limiter.limit for state in self._credentials.values())
        )

    @staticmethod
    def _report(key: str, line: tuple[int, Change] | None) -> None:
        if line is not None:
            old, change = line
            log.info(
                "credential %s send concurrency %d → %d (%s)",
                key,
                old,
                change.new,
                change.describe(),
                extra={"credential_id": key},
            )
