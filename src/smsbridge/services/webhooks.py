"""Provider webhooks: delivery reports (``POST /hooks/status/{token}``).

The token in the URL names the surface (unguessable); the surface's primary credential says
how to read the body. Unknown message ids are acknowledged (a provider would otherwise retry
forever) and logged; replays and out-of-order reports have no second effect, because a final
status never changes. Concurrent webhooks share one transaction (group commit), each answered
once its reports are committed: a 2xx means applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from smsbridge.domain.credentials import Credential
from smsbridge.domain.signatures import standard_webhooks_valid, twilio_request_valid
from smsbridge.domain.webhooks import WebhookRequest, read_body, read_reports
from smsbridge.errors import MalformedWebhook, NotFound, WebhookNotAuthentic
from smsbridge.observability.metrics import Metrics
from smsbridge.services.credentials import CredentialService
from smsbridge.services.group_commit import GroupCommit
from smsbridge.storage import surfaces as surfaces_repo
from smsbridge.storage.database import Database
from smsbridge.storage.delivery_reports import Report, Tally, apply_report_groups
from smsbridge.storage.surfaces import SurfaceRow

log = logging.getLogger("smsbridge.webhooks")


def verify_signature(credential: Credential, request: WebhookRequest, now: datetime) -> None:
    """Refuse (403) a webhook whose provider signs its requests when the signature fails.

    * ``webhook_signing`` set on the credential: a Standard Webhooks signature (HMAC-SHA256,
      timestamp within five minutes);
    * Twilio-preset credentials: ``X-Twilio-Signature`` keyed with the account's Auth Token:
      ``webhook_secret`` when set (sending with an API key, whose secret Twilio never signs
      with), else the Basic auth password.

    Without the headers, or without a secret to check them, the request is refused too: an
    unsigned request cannot be told from a forged one.
    """
    signing = credential.webhook_signing
    if signing is not None and not standard_webhooks_valid(
        signing.secret, request.headers, request.body, now.timestamp()
    ):
        raise WebhookNotAuthentic("the webhook-signature header does not verify")
    if credential.preset != "twilio":
        return
    token = credential.webhook_secret or getattr(credential.auth, "password", "") or ""
    if not twilio_request_valid(
        token,
        request.headers.get("x-twilio-signature"),
        request.url,
        request.body,
        request.content_type,
    ):
        raise WebhookNotAuthentic("X-Twilio-Signature does not match this request")


async def webhook_target(
    db: Database, credentials: CredentialService, token: str, *, kind: str
) -> tuple[SurfaceRow, Credential]:
    """The surface a webhook URL's token names (``kind``: inbound or status) and its primary
    credential, which must have the matching mapping."""
    async with db.read() as conn:
        if kind == "inbound":
            surface = await surfaces_repo.by_inbound_token(conn, token)
        else:
            surface = await surfaces_repo.by_status_token(conn, token)
        if surface is None:
            raise NotFound("no such webhook")
        credential_id = await surfaces_repo.primary_credential_id(conn, surface.id)
    if credential_id is None:
        raise MalformedWebhook("the surface has no credential")
    credential = await credentials.load(credential_id)
    mapping = credential.inbound if kind == "inbound" else credential.delivery_reports
    if mapping is None:
        name = "inbound" if kind == "inbound" else "delivery_reports"
        raise MalformedWebhook(
            f"the surface's credential has no {name} mapping (see the credential documentation)"
        )
    return surface, credential


TARGET_CACHE_SECONDS = 2.0
"""How long a webhook URL's surface and credential are used without reading them again: a
provider posting thousands of reports a second does not read and decrypt its credential
thousands of times a second. An edit made by another process shows within this time."""
TARGET_CACHE_SIZE = 256


class WebhookTargets:
    """:func:`webhook_target`, remembered for :data:`TARGET_CACHE_SECONDS` per URL token.

    One read per token at a time: webhooks arriving while it is read (every one in flight,
    when the remembered value has just expired) wait for that read instead of each reading
    and decrypting the credential again."""

    def __init__(self, db: Database, credentials: CredentialService) -> None:
        self._db = db
        self._credentials = credentials
        self._known: dict[tuple[str, str], tuple[float, SurfaceRow, Credential]] = {}
        self._reading: dict[tuple[str, str], asyncio.Task[tuple[SurfaceRow, Credential]]] = {}

    async def get(self, token: str, *, kind: str) -> tuple[SurfaceRow, Credential]:
        key = (kind, token)
        known = self._known.get(key)
        if known is not None and time.monotonic() - known[0] < TARGET_CACHE_SECONDS:
            return known[1], known[2]
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read(key))
            self._reading[key] = reading
            reading.add_done_callback(partial(self._read_done, key))
        # shielded: a webhook that gives up does not cancel the read the others wait for
        return await asyncio.shield(reading)

    def _read_done(self, key: tuple[str, str], done: asyncio.Task[Any]) -> None:
        self._reading.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: every waiter may have given up

    async def _read(self, key: tuple[str, str]) -> tuple[SurfaceRow, Credential]:
        kind, token = key
        started = time.monotonic()
        surface, credential = await webhook_target(self._db, self._credentials, token, kind=kind)
        if len(self._known) >= TARGET_CACHE_SIZE:
            self._known.clear()
        self._known[key] = (started, surface, credential)
        return surface, credential


class WebhookService:
    def __init__(
        self,
        db: Database,
        credentials: CredentialService,
        *,
        clock: Callable[[], datetime],
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._targets = WebhookTargets(db, credentials)
        # Concurrent webhooks' reports are applied together: one transaction, a statement
        # per table, each webhook answered once the transaction holding its reports commits.
        self._group: GroupCommit[tuple[str, Sequence[Report]], Tally] = GroupCommit(
            self._apply,
            name="delivery-reports",
            max_weight=5000,
            parallel=1 if db.dialect_ops.single_writer else 4,
        )

    async def _apply(self, groups: Sequence[tuple[str, Sequence[Report]]]) -> list[Tally]:
        return await self._db.run_transaction(
            partial(apply_report_groups, groups=groups, at=self._clock())
        )

    def group_stats(self) -> tuple[int, int]:
        """(transactions, webhooks) the group commit has applied so far."""
        return self._group.groups, self._group.units

    async def close(self) -> None:
        await self._group.close()

    async def delivery_reports(self, token: str, request: WebhookRequest) -> dict[str, Any]:
        try:
            answer = await self._delivery_reports(token, request)
        except Exception as exc:
            self._metrics.webhook("status", exc)
            raise
        self._metrics.webhook("status")
        self._metrics.reports_read(answer["applied"], answer["unknown"], answer["ignored"])
        return answer

    async def _delivery_reports(self, token: str, request: WebhookRequest) -> dict[str, Any]:
        surface, credential = await self._targets.get(token, kind="status")
        assert credential.delivery_reports is not None  # checked by webhook_target
        verify_signature(credential, request, self._clock())
        document = read_body(request.body, request.content_type)
        reports, notes = read_reports(document, credential.delivery_reports)
        rows = [(r.provider_message_id, r.status, r.error, r.provider_status) for r in reports]
        tally = await self._group.submit((surface.id, rows), weight=max(1, len(rows)))
        applied, unknown, ignored = tally.applied, tally.unknown, tally.ignored
        self._metrics.status_changed(tally.statuses)
        if unknown:
            log.info(
                "surface %s: %d delivery report(s) for unknown message ids",
                surface.id,
                unknown,
                extra={"surface_id": surface.id},
            )
        for note in notes:
            log.info(
                "surface %s: delivery report skipped: %s",
                surface.id,
                note,
                extra={"surface_id": surface.id},
            )
        return {
            "received": len(reports) + len(notes),
            "applied": applied,
            "unknown": unknown,
            "ignored": ignored + len(notes),
        }
