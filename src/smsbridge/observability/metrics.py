"""The process's Prometheus metrics: counters and histograms the hot paths feed, on a registry
of their own.

One :class:`Metrics` per :class:`~smsbridge.container.Services` (not prometheus_client's global
registry: several applications in one process, tests among them, never share figures). The
hot paths call small methods here; each keeps the labelled children it has made (per
credential, per outcome) so that a send costs dict lookups and an ``inc``/``observe``, never a
``labels()`` call. Labels are bounded sets: credential ids, outcomes and statuses from enums,
never a message id or a phone number.

Gauges read when scraped (worker state, the database's outbox) are collectors of
:mod:`smsbridge.observability.gauges`, registered here by their owners.
"""

from __future__ import annotations

__all__ = ["LATENCY_BUCKETS", "Gauge", "Metrics"]

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.registry import Collector

from smsbridge.errors import (
    InvalidInput,
    MalformedWebhook,
    NotFound,
    SecretsUnavailable,
    WebhookNotAuthentic,
)
from smsbridge.storage.records import ClaimedMessage, Completion

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds; providers answer in tens to hundreds of milliseconds, time out in tens of seconds."""


def webhook_outcome(error: BaseException | None) -> str:
    """What a provider webhook came to: ``ok``, or why it was refused (a fixed set)."""
    if error is None:
        return "ok"
    if isinstance(error, NotFound):
        return "not_found"
    if isinstance(error, WebhookNotAuthentic):
        return "not_authentic"
    if isinstance(error, MalformedWebhook | InvalidInput):
        return "malformed"
    if isinstance(error, SecretsUnavailable):
        return "unreadable_credential"
    return "error"


class Refresher(Protocol):
    max_age: float
    """Seconds its figures are served before a scrape reads them again."""

    async def refresh(self) -> None: ...
    async def close(self) -> None: ...


class _CredentialSeries:
    """The children of one credential's series, made on first use."""

    __slots__ = ("attempts", "latency", "messages", "wait_seconds", "waits")

    def __init__(self, metrics: Metrics, credential_id: str) -> None:
        self.latency = metrics.provider_latency.labels(credential_id)
        self.waits = metrics.rate_limit_waits.labels(credential_id)
        self.wait_seconds = metrics.rate_limit_wait_seconds.labels(credential_id)
        self.attempts: dict[str, Counter] = {}
        self.messages: dict[str, Counter] = {}


class Metrics:
    """Every counter and histogram of one smsbridge process (API or worker)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "smsbridge_messages",
            "Messages this process's workers recorded in a status (sent = accepted by the "
            "provider; failed; suppressed; cancelled), or its delivery-report webhooks moved "
            "to one (delivered, undelivered, failed), by the credential of the last attempt.",
            ["status", "credential"],
            registry=r,
        )
        self.send_attempts = Counter(
            "smsbridge_send_attempts",
            "Send attempts by outcome (accepted, rejected, unreachable, ambiguous, blocked).",
            ["credential", "outcome"],
            registry=r,
        )
        self.provider_latency = Histogram(
            "smsbridge_provider_latency_seconds",
            "Time from a send's request to its provider's answer (or to giving up on it).",
            ["credential"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.claims = Counter(
            "smsbridge_claims", "Claim transactions that leased at least one message.", registry=r
        )
        self.claimed = Counter(
            "smsbridge_claimed_messages", "Messages leased by this process's claims.", registry=r
        )
        self.lease_takeovers = Counter(
            "smsbridge_lease_takeovers",
            "Leases that passed to another worker: results_discarded (this worker's results "
            "came after its lease had passed on) or unknown_outcome (this worker claimed a "
            "message whose earlier at-most-once attempt started and was never recorded).",
            ["kind"],
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "smsbridge_rate_limit_waits",
            "Sends that waited for their credential's shared rate limit.",
            ["credential"],
            registry=r,
        )
        self.rate_limit_wait_seconds = Counter(
            "smsbridge_rate_limit_wait_seconds",
            "Seconds sends waited for their credential's shared rate limit.",
            ["credential"],
            registry=r,
        )
        self.webhooks = Counter(
            "smsbridge_webhooks_received",
            "Provider webhooks received (kind: status, inbound) by outcome (ok, not_found, "
            "not_authentic, malformed, error).",
            ["kind", "outcome"],
            registry=r,
        )
        self.delivery_reports = Counter(
            "smsbridge_delivery_reports",
            "Delivery reports read from status webhooks: applied (a message's status changed), "
            "unknown (no such message yet: parked) or ignored (replays, interim statuses).",
            ["outcome"],
            registry=r,
        )
        self.inbound_items = Counter(
            "smsbridge_inbound_items",
            "Inbound messages by what they did (stored, opt_outs, opt_ins, help, ...).",
            ["action"],
            registry=r,
        )
        self.fanout_messages = Counter(
            "smsbridge_fanout_messages", "Campaign messages written by fan-outs.", registry=r
        )
        self.fanout_exclusions = Counter(
            "smsbridge_fanout_exclusions",
            "Audience members fan-outs excluded (opted out, duplicates, invalid numbers).",
            registry=r,
        )
        self.event_deliveries = Counter(
            "smsbridge_event_deliveries",
            "Deliveries of events to customer endpoints, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.sends_in_flight = Gauge(
            "smsbridge_sends_in_flight",
            "Sends waiting for their provider's answer now, by credential.",
            ["credential"],
            registry=r,
        )
        self._credentials: dict[str, _CredentialSeries] = {}
        self._takeovers = {
            kind: self.lease_takeovers.labels(kind)
            for kind in ("results_discarded", "unknown_outcome")
        }
        self._webhooks: dict[tuple[str, str], Counter] = {}
        self._reports = {
            o: self.delivery_reports.labels(o) for o in ("applied", "unknown", "ignored")
        }
        self._refreshers: list[Refresher] = []

    def register(self, collector: Collector, *, refresher: Refresher | None = None) -> None:
        """Add a collector of gauges read when scraped; ``refresher`` (bounded in time) brings
        its figures up to date before each scrape."""
        self.registry.register(collector)
        if refresher is not None:
            self._refreshers.append(refresher)

    @property
    def refreshers(self) -> tuple[Refresher, ...]:
        return tuple(self._refreshers)

    async def exposition(self) -> bytes:
        """Every metric in the Prometheus text format, gauges refreshed first."""
        for refresher in self._refreshers:
            await refresher.refresh()
        return generate_latest(self.registry)

    async def close(self) -> None:
        """Wait for the refreshers' reads in progress (before the database closes)."""
        for refresher in self._refreshers:
            await refresher.close()

    def _series(self, credential_id: str) -> _CredentialSeries:
        series = self._credentials.get(credential_id)
        if series is None:
            series = self._credentials[credential_id] = _CredentialSeries(self, credential_id)
        return series

    # --- the send hot path --------------------------------------------------------------------

    def attempted(self, credential_id: str, outcome: str, latency_ms: float) -> None:
        """One send attempt through ``credential_id`` ended with ``outcome`` after so long."""
        series = self._series(credential_id)
        counter = series.attempts.get(outcome)
        if counter is None:
            counter = series.attempts[outcome] = self.send_attempts.labels(credential_id, outcome)
        counter.inc()
        series.latency.observe(latency_ms / 1000)

    def rate_waited(self, credential_id: str, seconds: float) -> None:
        if seconds > 0:
            series = self._series(credential_id)
            series.waits.inc()
            series.wait_seconds.inc(seconds)

    def claimed_batch(self, batch: Sequence[ClaimedMessage]) -> None:
        """A claim leased ``batch``; those whose at-most-once attempt started under an
        earlier lease, never recorded, were taken over from a worker that died."""
        if not batch:
            return
        self.claims.inc()
        self.claimed.inc(len(batch))
        unknown = sum(1 for message in batch if message.started_at is not None)
        if unknown:
            self._takeovers["unknown_outcome"].inc(unknown)

    def recorded(self, batch: Sequence[Completion], applied: Collection[str]) -> None:
        """A worker wrote ``batch``; the ``applied`` ids' leases still held, the others had
        passed to another worker (their results discarded). Each applied message counts
        once in its new status; retries (``queued`` again) are attempts, not messages."""
        if len(applied) < len(batch):
            self._takeovers["results_discarded"].inc(len(batch) - len(applied))
        for completion in batch:
            status = completion.status
            if status == "queued" or completion.message_id not in applied:
                continue
            self._messages_in(status, completion.credential_id).inc()

    # --- webhooks, fan-out, events ------------------------------------------------------------

    def webhook(self, kind: str, error: BaseException | None = None) -> None:
        """A provider webhook of ``kind`` (status, inbound) was handled, or refused with
        ``error`` (:func:`webhook_outcome`)."""
        key = (kind, webhook_outcome(error))
        counter = self._webhooks.get(key)
        if counter is None:
            counter = self._webhooks[key] = self.webhooks.labels(*key)
        counter.inc()

    def status_changed(self, counts: Mapping[tuple[str, str | None], int]) -> None:
        """Messages a delivery report moved to a status (delivered, undelivered, failed), by
        (status, credential): the same ``smsbridge_messages`` series as the worker's."""
        for (status, credential_id), n in counts.items():
            self._messages_in(status, credential_id).inc(n)

    def _messages_in(self, status: str, credential_id: str | None) -> Counter:
        """The ``smsbridge_messages`` counter of (status, credential), labelled once."""
        credential = credential_id or "none"
        series = self._series(credential)
        counter = series.messages.get(status)
        if counter is None:
            counter = series.messages[status] = self.messages.labels(status, credential)
        return counter

    def reports_read(self, applied: int, unknown: int, ignored: int) -> None:
        for outcome, count in (("applied", applied), ("unknown", unknown), ("ignored", ignored)):
            if count:
                self._reports[outcome].inc(count)

    def inbound_acted(self, counts: Mapping[str, object]) -> None:
        for action, count in counts.items():
            if isinstance(count, int) and count > 0:
                self.inbound_items.labels(action).inc(count)

    def fanned_out(self, messages: int, excluded: int) -> None:
        if messages:
            self.fanout_messages.inc(messages)
        if excluded:
            self.fanout_exclusions.inc(excluded)

    def event_delivered(self, outcome: str) -> None:
        """For the event deliveries to customer endpoints (``outcome``: e.g. ``delivered``,
        ``failed``, ``retrying``, ``gave_up``: keep it to a small fixed set)."""
        self.event_deliveries.labels(outcome).inc()
