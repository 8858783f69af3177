"""The delivery worker: claim → send → record, with bounded concurrency.

Four cooperating tasks:

* the **claimer** takes batches of due outbox entries under a lease (``storage/claim.py``),
  whenever fewer than ``max_in_flight`` messages are being handled (claims and that bound
  grow with the send limits: :meth:`WorkerConfig.holding`);
* **senders** pick the credential (failover, below), take one of its send slots, wait for its
  shared rate limit, send through the gateway and turn the outcome into a decision with the
  retry policy. How many sends each credential has in flight adapts to its provider's
  latency and push-back (:mod:`smsbridge.delivery.adaptive`, :mod:`~.send_slots`), within
  ``max_concurrency`` in all; the senders are as many as that needs (:mod:`~.senders`);
* the **recorder** applies finished attempts in batches, fenced by lease token;
* the **heartbeat** renews the leases of messages still in hand.

Stopping (SIGTERM/SIGINT or :meth:`Worker.stop`) stops claiming, lets in-flight sends finish
and be recorded, and releases claimed messages that were not started.

**Failover** (which credential of a route an attempt uses): :mod:`smsbridge.domain.routing`.
Each credential loads on its own: one that cannot be used never holds up the claimed batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from smsbridge.delivery.completions import (
    OPTED_OUT_HERE,
    attempt_event,
    ended_unsent,
    not_accepted,
    opted_out_at_provider,
    outcome_unknown,
    retry_later,
    sent,
)
from smsbridge.delivery.gateway import ProviderGateway
from smsbridge.delivery.ratelimit import SharedRateLimiter
from smsbridge.delivery.send_slots import SendingStopped, SendSlots
from smsbridge.delivery.senders import SenderPool
from smsbridge.delivery.start_marks import StartMarks
from smsbridge.delivery.worker_config import WorkerConfig, outage_pause, worker_name
from smsbridge.domain.breaker import CircuitBreakers
from smsbridge.domain.credentials import Credential
from smsbridge.domain.messages import MessageStatus
from smsbridge.domain.ports import CredentialSource
from smsbridge.domain.provider_answers import (
    error_codes,
    extract_message_id,
    judge_no_answer,
    judge_response,
)
from smsbridge.domain.request import MessageValues
from smsbridge.domain.retry import OutcomeKind, RetryPolicy
from smsbridge.domain.routing import load_route, route_step
from smsbridge.errors import DeliveryError
from smsbridge.observability.metrics import Metrics
from smsbridge.storage.claim import (
    ClaimedMessage,
    Completion,
    claim_batch,
    complete_batch,
    release,
    renew_leases,
)
from smsbridge.storage.database import Database
from smsbridge.storage.messages import apply_early_reports

__all__ = ["Worker", "WorkerConfig"]

log = logging.getLogger("smsbridge.worker")


@dataclass
class _Work:
    message: ClaimedMessage
    credential: Credential | None
    fallbacks: tuple[tuple[str, Credential | None], ...] = ()
    unusable: Mapping[str, str] = field(default_factory=dict)
    """Why the route's unusable credentials (None above) cannot be used, by id."""


class Worker:
    def __init__(
        self,
        *,
        db: Database,
        credentials: CredentialSource,
        gateway: ProviderGateway,
        limiter: SharedRateLimiter,
        clock: Callable[[], datetime],
        config: WorkerConfig = WorkerConfig(),
        policy: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        name: str | None = None,
        breakers: CircuitBreakers | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._credentials = credentials
        self._gateway = gateway
        self._limiter = limiter
        self._clock = clock
        self._config = config
        self._status_url = f"{config.public_url}/hooks/status/"  # + the message's token
        self._policy = policy
        self._rng = rng or random.Random()
        self.breakers = breakers or CircuitBreakers(
            threshold=config.breaker_threshold, cooldown=config.breaker_cooldown
        )
        self.name = name or worker_name()
        self._queue: asyncio.Queue[_Work | None] = asyncio.Queue()
        self._slots = SendSlots(initial=config.concurrency, cap=config.max_concurrency)
        self._slots.metrics = self.metrics = metrics or Metrics()
        self._senders = SenderPool(self._queue, self._send, self._senders_wanted)
        self._gave_back: list[_Work] = []  # waited for a slot when the worker stopped
        self._in_hand: dict[str, int] = {}  # message id → lease token, claimed and not recorded
        self._done: list[Completion] = []
        self._done_event = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._room = asyncio.Condition()
        self._senders_done = False
        self._claim_numbers = itertools.count(1)
        self._flush_failures = 0
        self.sent = 0
        self.start_marks = StartMarks(db, worker=self.name, clock=clock)

    # --- control ---------------------------------------------------------------------------

    def wake(self) -> None:
        """New work was enqueued in this process: claim now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def send_concurrency(self) -> dict[str, int]:
        """How many sends each credential may have in flight now, by credential id."""
        return self._slots.limits()

    async def run(self) -> None:
        """Work until :meth:`stop`; then finish in-flight sends and release the rest."""
        log.info("worker %s started", self.name, extra={"worker": self.name})

        recorder = asyncio.create_task(self._recorder())
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self._claimer()
        finally:
            # stop: nothing new is claimed; unstarted work is released, in-flight finishes
            unstarted: list[tuple[str, int]] = []
            while not self._queue.empty():
                work = self._queue.get_nowait()
                if work is not None:
                    unstarted.append((work.message.id, work.message.lease_token))
            self._slots.close()  # senders waiting for a slot give their message back
            await self._senders.stop()  # each sender finishes its send, then exits
            unstarted.extend((w.message.id, w.message.lease_token) for w in self._gave_back)
            self._senders_done = True
            self._done_event.set()
            await asyncio.gather(recorder, return_exceptions=True)
            await self._flush()
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            if unstarted:
                async with self._db.transaction() as conn:
                    released = await release(conn, unstarted, self._clock())
                for message_id, _ in unstarted:
                    self._in_hand.pop(message_id, None)
                log.info("worker %s released %d unstarted messages", self.name, len(released))
            limits = ", ".join(f"{k} {n}" for k, n in self.send_concurrency().items()) or "-"
            log.info(
                "worker %s stopped after %d sends; send limits: %s", self.name, self.sent, limits
            )

    # --- claiming ---------------------------------------------------------------------------

    async def _claimer(self) -> None:
        # Claim in sizeable batches: topping up after every small flush would cost one claim
        # transaction per flush. Claim again once a batch fits, or the senders run dry.
        failures = 0
        while not self._stopping.is_set():
            self._senders.staff()
            limit = self._slots.total_limit  # the more sends at once, the more in hand
            wanted, bound = self._config.holding(limit)
            room = bound - len(self._in_hand)
            wanted = min(wanted, bound)
            starving = self._queue.qsize() + self._slots.waiting < limit
            if room <= 0 or (room < wanted and not starving):
                async with self._room:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._room.wait(), self._config.poll_interval)
                continue
            try:
                claimed = await self.claim(min(room, wanted))
            except Exception:  # database unavailable: keep the worker alive, back off, retry
                failures += 1
                pause = outage_pause(failures)
                log.exception("claim failed (%d in a row); retrying in %.1f s", failures, pause)
                await self._idle(pause)
                continue
            failures = 0
            if not claimed:
                await self._idle(self._config.poll_interval)

    async def claim(self, limit: int) -> int:
        """Claim up to ``limit`` due messages and queue them for the senders."""
        now = self._clock()
        batch = await claim_batch(
            self._db,
            owner=f"{self.name}/{next(self._claim_numbers)}",
            now=now,
            lease=self._config.lease,
            limit=limit,
        )
        self.metrics.claimed_batch(batch)
        if not batch:
            return 0
        for message in batch:
            self._in_hand[message.id] = message.lease_token
        versions = {
            m.credential_id: m.credential_version
            for m in batch
            if m.credential_id and m.credential_version
        }
        for m in batch:
            if m.fallback_ids and m.fallback_versions:
                versions.update(zip(m.fallback_ids, m.fallback_versions, strict=True))
        loaded = await self._credentials.load_many(versions, versions)
        for message in batch:
            route = load_route(message.credential_id, message.fallback_ids, loaded)
            self._queue.put_nowait(_Work(message, *route))
        return len(batch)

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    # --- sending ----------------------------------------------------------------------------

    def _senders_wanted(self) -> int:
        return min(self._slots.total_limit + self._slots.waiting, len(self._in_hand))

    async def _send(self, work: _Work) -> None:
        try:
            completion = await self.process(
                work.message, work.credential, work.fallbacks, work.unusable
            )
        except SendingStopped:
            self._gave_back.append(work)
            return
        except Exception:
            log.exception("unexpected error sending %s", work.message.id)
            completion = self._unexpected(work.message)
        self._done.append(completion)
        if len(self._done) >= self._config.flush_size:
            self._done_event.set()

    def _unexpected(self, message: ClaimedMessage, reason: str = "internal error") -> Completion:
        now = self._clock()
        delay = self._policy.backoff(message.attempts + 1, self._rng)
        return retry_later(message, now, delay, reason)

    async def process(
        self,
        message: ClaimedMessage,
        credential: Credential | None,
        fallbacks: Sequence[tuple[str, Credential | None]] = (),
        unusable: Mapping[str, str] | None = None,
    ) -> Completion:
        """Send one message once and decide what happens next (no database writes).

        ``credential`` is the surface's primary, ``fallbacks`` its fallback credentials in
        order, by id; None for one that cannot be used, ``unusable`` saying why, by id."""
        attempt = message.attempts + 1
        started = self._clock()
        if message.started_at is not None:
            return outcome_unknown(message, started)
        if message.suppressed:
            return ended_unsent(message, started, MessageStatus.SUPPRESSED, OPTED_OUT_HERE)
        route = ((message.credential_id or "", credential), *fallbacks)
        chosen, stage, stage_attempt, failover = route_step(
            route, attempt, self._policy.max_attempts, self.breakers, started
        )
        if chosen is None:  # nothing usable from here to the end of the route
            reason = (unusable or {}).get(route[stage][0], "the surface has no usable credential")
            return ended_unsent(message, started, MessageStatus.FAILED, reason)
        credential_id, picked = route[chosen]
        assert picked is not None  # route_step chooses usable credentials only
        credential = picked
        slot = await self._slots.acquire(credential_id)  # SendingStopped: nothing started
        try:
            if credential.rate_limit_per_second:
                rate = credential.rate_limit_per_second
                slot.rate_held = await self._limiter.acquire(credential_id, rate) > 0.001
                started = self._clock()
            token = message.status_token
            callback = f"{self._status_url}{token}" if token else ""
            values = MessageValues(
                message.to_number, message.from_number, message.body, message.id, callback
            )
            if not credential.retry_ambiguous and not await self.start_marks.mark(
                message.id, message.lease_token
            ):  # the lease was lost: another worker has the message, this one sends nothing
                return self._unexpected(message, reason="lease lost before sending")
            status_code: int | None = None
            opted_out: str | None = None
            try:
                result = await self._gateway.send(credential, values)
            except DeliveryError as exc:
                outcome = judge_no_answer(exc, credential.secret_values().values())
                latency = (self._clock() - started).total_seconds() * 1000
                slot.learn(outcome, latency)
            else:
                response = result.response
                status_code = response.status
                latency = result.latency_ms
                outcome = judge_response(response, credential, self._clock())
                slot.learn(outcome, latency)
                if outcome.kind is OutcomeKind.ACCEPTED:  # the common case: straight to the record
                    self.breakers.succeeded(credential_id)
                    body, secrets = response.body, result.secrets
                    provider_id = extract_message_id(body, credential.message_id_path, secrets)
                    self.sent += 1
                    now = self._clock()
                    return sent(
                        message,
                        attempt,
                        started,
                        now,
                        response.status,
                        latency,
                        credential_id,
                        provider_id,
                        failover,
                    )
                if credential.opt_out_error_codes and outcome.kind is OutcomeKind.REJECTED:
                    codes = error_codes(response.body) & set(credential.opt_out_error_codes)
                    opted_out = min(codes) if codes else None
        finally:
            self._slots.release(slot)
        now = self._clock()
        if outcome.transient:
            self.breakers.failed(credential_id, now)
        elif outcome.kind is OutcomeKind.REJECTED:  # a permanent refusal: the provider is up
            self.breakers.succeeded(credential_id)
        attempted = attempt_event(
            message, attempt, started, credential_id, latency, failover, status_code, outcome
        )
        if opted_out is not None:
            return opted_out_at_provider(message, attempt, now, attempted, credential_id, opted_out)
        decision = self._policy.decide(
            outcome,
            attempt=stage_attempt,
            retry_ambiguous=credential.retry_ambiguous,
            rng=self._rng,
        )
        return not_accepted(
            message, attempt, now, attempted, credential_id, outcome, decision, route, stage
        )

    # --- recording --------------------------------------------------------------------------

    async def _recorder(self) -> None:
        # Ends by flag, not by cancellation: Python 3.11's wait_for can swallow a cancel
        # that races with the event being set.
        while not self._senders_done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done_event.wait(), self._config.flush_interval)
            self._done_event.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self._done:
            return
        batch, self._done = self._done, []
        try:
            applied = await complete_batch(self._db, batch, self._clock())
        except Exception:
            # Kept in memory and retried: the leases are still ours until they expire (the
            # heartbeat renews them when the database is back); past that, the fenced write
            # discards them and the rescuer re-sends, at-least-once.
            self._flush_failures += 1
            pause = outage_pause(self._flush_failures)
            log.exception("recording %d results failed; retrying in %.1f s", len(batch), pause)
            self._done = batch + self._done
            await asyncio.sleep(pause)
            return
        self._flush_failures = 0
        self.metrics.recorded(batch, applied)
        lost = len(batch) - len(applied)
        if lost:
            log.warning("%d results discarded: their lease had passed to another worker", lost)
        for completion in batch:
            self._in_hand.pop(completion.message_id, None)
        async with self._room:
            self._room.notify_all()

    async def sweep_early_reports(self) -> int:
        """Apply delivery reports that arrived before their send was recorded."""
        async with self._db.transaction() as conn:
            return await apply_early_reports(conn, self._clock())

    async def _heartbeat(self) -> None:
        period = self._config.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self.sweep_early_reports()
            except Exception:
                log.exception("applying early delivery reports failed")
            if not self._in_hand:
                continue
            try:
                async with self._db.transaction() as conn:
                    await renew_leases(
                        conn, list(self._in_hand.items()), self._clock() + self._config.lease
                    )
            except Exception:
                log.exception("lease renewal failed")

    async def drain(self, *, timeout: float = 30.0) -> None:
        """Process until nothing is due, without the background tasks (tests): claim, send,
        record, repeat."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        while loop.time() < deadline:
            claimed = await self.claim(self._config.batch_size)
            if not claimed and self._queue.empty():
                return
            works = []
            while not self._queue.empty():
                work = self._queue.get_nowait()
                if work is not None:
                    works.append(work)
            sends = (self.process(w.message, w.credential, w.fallbacks, w.unusable) for w in works)
            self._done.extend(await asyncio.gather(*sends))  # as many at once as slots allow
            await self._flush()
        raise TimeoutError("drain did not finish in time")
