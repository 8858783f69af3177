"""Posting signed events: the transport, the signer, and the dispatcher that runs beside the
delivery worker.

The dispatcher has two loops: the **tailer** (:mod:`smsbridge.delivery.events_tail`) turns
the logs' new rows into deliveries; the **deliverer** claims due deliveries in batches under a
lease (``storage/events.py``), posts them concurrently (bounded overall and per target), and
records every outcome of the batch in one transaction, fenced by lease token. A worker killed
mid-batch leaves its deliveries leased: another claims them once the lease expires (at least
once; receivers de-duplicate by ``webhook-id``).

Each request carries ``webhook-id`` (the event's id, the same at every attempt),
``webhook-timestamp`` and ``webhook-signature`` per the Standard Webhooks specification.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from smsbridge.delivery.events_tail import EventTailer
from smsbridge.delivery.http import BlockedAddressError, GuardedConnector
from smsbridge.delivery.worker_config import outage_pause, worker_name
from smsbridge.domain.events import (
    DISABLE_AFTER,
    GIVE_UP_AFTER,
    Answer,
    DeliveryStatus,
    excerpt,
    judge,
    sign,
)
from smsbridge.domain.retry import parse_retry_after
from smsbridge.storage import events as store
from smsbridge.storage.database import Database
from smsbridge.storage.events import ClaimedDelivery, DeliveryOutcome

log = logging.getLogger("smsbridge.events")

MAX_ANSWER_BYTES = 4096
"""What is read of a receiver's answer, at most (an excerpt goes to the deliveries log)."""
USER_AGENT = "smsbridge-events/1"
_OUTCOMES = {"delivered": "delivered", "failed": "failed", "pending": "retrying", "dead": "gave_up"}
"""Delivery statuses as the ``smsbridge_event_deliveries_total{outcome}`` metric names them."""


class EventTransport:
    """POSTs to event receivers: a session of its own (never queued behind provider sends),
    SSRF-guarded in the connector exactly like the provider transport."""

    def __init__(self, *, allow_private: bool, connections: int = 256) -> None:
        self._allow_private = allow_private
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = GuardedConnector(
                allow_private=self._allow_private, limit=self._connections, ttl_dns_cache=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=False
            )
        return self._session

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout: float
    ) -> tuple[Answer, bytes]:
        """The receiver's answer (and the start of its body); failures as an :class:`Answer`
        without status, never raised."""
        limits = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0))
        try:
            async with self._open().post(
                url, data=body, headers=headers, allow_redirects=False, timeout=limits
            ) as response:
                start = await response.content.read(MAX_ANSWER_BYTES)
                retry_after = None
                if response.status in (429, 503):
                    retry_after = parse_retry_after(
                        response.headers.get("Retry-After"), datetime.now().astimezone()
                    )
                return Answer(response.status, retry_after=retry_after), start
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedAddressError):
                return Answer(None, f"address refused: {exc.os_error}", permanent=True), b""
            return Answer(None, "could not connect to the receiver"), b""
        except BlockedAddressError as exc:
            return Answer(None, f"address refused: {exc}", permanent=True), b""
        except TimeoutError:
            return Answer(None, f"no answer within {timeout:g} s"), b""
        except (aiohttp.InvalidURL, ValueError):  # (UnicodeError: a host IDNA cannot encode)
            return Answer(None, "the URL is not valid", permanent=True), b""
        except (aiohttp.ClientError, OSError) as exc:
            return Answer(None, f"request failed ({type(exc).__name__})"), b""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class EventSigner:
    """The secrets that sign a delivery: its endpoint's (opened once per version), plus the
    previous one while a rotation's overlap lasts; for a callback URL, the callback secrets
    (one per configured secret key, the first key's first)."""

    def __init__(
        self, open_secrets: Callable[[str], dict[str, str]], callback_secrets: Sequence[str]
    ) -> None:
        if not callback_secrets:
            raise ValueError("no callback secret")
        self._open_secrets = open_secrets  # SecretBox.open: the sealed endpoint secrets
        self._opened: dict[tuple[str, datetime | None], dict[str, str]] = {}
        self.callback_secrets = list(callback_secrets)

    @property
    def callback_secret(self) -> str:
        """The callback secret of the first (encrypting) secret key."""
        return self.callback_secrets[0]

    def secrets_for(self, delivery: ClaimedDelivery, now: datetime) -> list[str]:
        if delivery.endpoint_id is None or delivery.secrets is None:
            return self.callback_secrets
        key = (delivery.endpoint_id, delivery.secrets_version)
        opened = self._opened.get(key)
        if opened is None:
            if len(self._opened) > 1000:
                self._opened.clear()
            opened = self._opened[key] = self._open_secrets(delivery.secrets)
        found = [opened["current"]]
        expires = delivery.previous_expires_at
        if opened.get("previous") and expires is not None and expires > now:
            found.append(opened["previous"])
        return found

    def headers(self, delivery: ClaimedDelivery, now: datetime) -> dict[str, str]:
        stamp = int(now.timestamp())
        body = delivery.body.encode()
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(
                self.secrets_for(delivery, now), delivery.event_id, stamp, body
            ),
        }


@dataclass(frozen=True)
class EventDispatchConfig:
    batch_size: int = 200
    concurrency: int = 64
    """Posts in flight at once, in all."""
    per_target: int = 16
    """Posts in flight at once to one endpoint (or callback URL)."""
    lease: timedelta = timedelta(seconds=120)
    timeout: float = 10.0
    poll_interval: float = 0.5
    tail_batch: int = 1000
    keep: timedelta = timedelta(days=7)
    """How long finished deliveries stay in the deliveries log."""
    yield_pause: float = 0.5
    """Seconds each loop rests between rounds while this process's worker is sending: SMS
    go first, events catch up from the (durable) backlog once the burst is over."""


class EventDispatcher:
    def __init__(
        self,
        *,
        db: Database,
        transport: EventTransport,
        signer: EventSigner,
        clock: Callable[[], datetime],
        config: EventDispatchConfig = EventDispatchConfig(),
        rng: random.Random | None = None,
        name: str | None = None,
        on_outcome: Callable[[str], None] | None = None,
        sends: Callable[[], int] | None = None,
    ) -> None:
        self._db = db
        self._transport = transport
        self._signer = signer
        self._clock = clock
        self._config = config
        self._rng = rng or random.Random()
        self.name = name or worker_name()
        self._tailer = EventTailer(db, clock=clock, batch_size=config.tail_batch)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._claims = itertools.count(1)
        self._on_outcome = on_outcome
        self._sends = sends
        """How many SMS this process's workers have sent so far (None: no worker here)."""
        self.delivered = 0
        self._swept = 0.0

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        log.info("event dispatcher %s started", self.name)
        await asyncio.gather(self._loop(self._tail_round), self._loop(self._deliver_round))
        log.info("event dispatcher %s stopped after %d deliveries", self.name, self.delivered)

    async def _loop(self, round_: Callable[[], Awaitable[bool]]) -> None:
        failures = 0
        sent = -1
        while not self._stopping.is_set():
            if self._sends is not None:
                if sent >= 0 and self._sends() != sent:  # the worker is sending: give way,
                    await self._idle(self._config.yield_pause)  # then one round all the same
                sent = self._sends()
            try:
                busy = await round_()
            except Exception:
                failures += 1
                pause = outage_pause(failures)
                log.exception("event dispatch round failed (%d in a row)", failures)
                await self._idle(pause)
                continue
            failures = 0
            if not busy:
                await self._idle(self._config.poll_interval)

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _tail_round(self) -> bool:
        read = await self._tailer.run_once()
        return read >= self._config.tail_batch

    async def _deliver_round(self) -> bool:
        done = await self.deliver_once()
        await self._sweep()
        return done >= self._config.batch_size

    async def tail_once(self) -> int:
        return await self._tailer.run_once()

    async def deliver_once(self, *, only: int | None = None) -> int:
        """Claim due deliveries (``only``: that one), post them, record the outcomes."""
        now = self._clock()
        async with self._db.transaction() as conn:
            claimed = await store.claim(
                conn,
                owner=f"{self.name}/{next(self._claims)}",
                now=now,
                lease=self._config.lease,
                limit=self._config.batch_size,
                only=only,
            )
        if not claimed:
            return 0
        keeper = asyncio.create_task(self._keep_leases(claimed))
        try:
            outcomes = await self._post_all(claimed)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        async with self._db.transaction() as conn:
            disabled = await store.complete(conn, outcomes, self._clock(), DISABLE_AFTER)
        for endpoint_id, reason in disabled:
            log.warning("event endpoint %s disabled: %s", endpoint_id, reason)
        for outcome in outcomes:
            if outcome.succeeded:
                self.delivered += 1
            if self._on_outcome is not None:
                self._on_outcome(_OUTCOMES[outcome.status])
        return len(claimed)

    async def _keep_leases(self, claimed: Sequence[ClaimedDelivery]) -> None:
        """Renew the batch's leases while its posts run (a slow receiver may hold it)."""
        period = self._config.lease.total_seconds() / 3
        leases = [(d.id, d.lease_token) for d in claimed]
        while True:
            await asyncio.sleep(period)
            try:
                async with self._db.transaction() as conn:
                    await store.renew(conn, leases, self._clock() + self._config.lease)
            except Exception:
                log.exception("renewing event delivery leases failed")

    async def _post_all(self, claimed: Sequence[ClaimedDelivery]) -> list[DeliveryOutcome]:
        overall = asyncio.Semaphore(self._config.concurrency)
        per_target: dict[str, asyncio.Semaphore] = {}

        async def one(delivery: ClaimedDelivery) -> DeliveryOutcome:
            target = delivery.endpoint_id or delivery.url
            gate = per_target.setdefault(target, asyncio.Semaphore(self._config.per_target))
            # the target's gate first: deliveries queued behind a slow receiver hold no
            # global slot, so other receivers keep theirs
            async with gate, overall:
                try:
                    return await self._post(delivery)
                except Exception as exc:  # never lose the batch's other outcomes to one
                    log.exception("event delivery %s: unexpected error", delivery.id)
                    return self._outcome(delivery, Answer(None, type(exc).__name__), b"")

        return list(await asyncio.gather(*(one(d) for d in claimed)))

    async def _post(self, delivery: ClaimedDelivery) -> DeliveryOutcome:
        now = self._clock()
        first = delivery.first_attempt_at
        if first is not None and now > first + GIVE_UP_AFTER:
            # past its day (an endpoint re-enabled after a long pause): given up, not posted
            return self._outcome(delivery, Answer(None, "not posted: its day had passed"), b"")
        try:
            headers = self._signer.headers(delivery, now)
        except Exception as exc:  # undecryptable secrets (keys changed): retried, said why
            answer, start = Answer(None, f"cannot sign: {type(exc).__name__}"), b""
        else:
            answer, start = await self._transport.post(
                delivery.url, headers, delivery.body.encode(), timeout=self._config.timeout
            )
        return self._outcome(delivery, answer, start, now)

    def _outcome(
        self,
        delivery: ClaimedDelivery,
        answer: Answer,
        start: bytes,
        now: datetime | None = None,
    ) -> DeliveryOutcome:
        now = now or self._clock()
        attempted = self._clock()
        attempts = delivery.attempts + 1
        first = delivery.first_attempt_at or now
        verdict = judge(
            answer, attempts=attempts, first_attempt_at=first, now=attempted, rng=self._rng
        )
        error = answer.error
        if verdict.status is DeliveryStatus.DEAD:
            error = f"gave up a day after the first attempt ({error or f'HTTP {answer.status}'})"
        return DeliveryOutcome(
            id=delivery.id,
            lease_token=delivery.lease_token,
            endpoint_id=delivery.endpoint_id,
            status=verdict.status.value,
            attempts=attempts,
            first_attempt_at=first,
            attempted_at=attempted,
            next_attempt_at=verdict.next_attempt_at,
            last_status=answer.status,
            last_response=excerpt(start) if start else None,
            last_error=error,
        )

    async def _sweep(self) -> None:
        """Forget finished deliveries past the log's retention, every 10 minutes, busy or
        not, in chunks until none is left (a chunk per transaction: short write locks)."""
        now = self._clock()
        if self._swept and self._swept > time.monotonic() - 600:
            return
        self._swept = time.monotonic()
        while not self._stopping.is_set():
            async with self._db.transaction() as conn:
                if not await store.forget_old(conn, now - self._config.keep):
                    return
            await asyncio.sleep(0)

    async def drain(self, *, timeout: float = 30.0) -> None:
        """Tail and deliver until nothing is due (tests): no background tasks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            read = await self.tail_once()
            sent = await self.deliver_once()
            if not read and not sent:
                return
        raise TimeoutError("event dispatch did not finish in time")
