"""Provider webhooks: delivery reports (``POST /hooks/status/{token}``).

The token in the URL names the surface (unguessable); the surface's primary credential says
how to read the body. Unknown message ids are acknowledged (a provider would otherwise retry
forever) and logged; replays and out-of-order reports have no second effect, because a final
status never changes. One short transaction per webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from smsbridge.domain.webhooks import read_body, read_reports
from smsbridge.errors import MalformedWebhook, NotFound
from smsbridge.services.credentials import CredentialService
from smsbridge.storage import messages as messages_repo
from smsbridge.storage import surfaces as surfaces_repo
from smsbridge.storage.database import Database

log = logging.getLogger("smsbridge.webhooks")


class WebhookService:
    def __init__(
        self, db: Database, credentials: CredentialService, *, clock: Callable[[], datetime]
    ) -> None:
        self._db = db
        self._credentials = credentials
        self._clock = clock

    async def delivery_reports(
        self, token: str, body: bytes, content_type: str | None
    ) -> dict[str, Any]:
        async with self._db.read() as conn:
            surface = await surfaces_repo.by_status_token(conn, token)
            if surface is None:
                raise NotFound("no such webhook")
            credential_id = await surfaces_repo.primary_credential_id(conn, surface.id)
        if credential_id is None:
            raise MalformedWebhook("the surface has no credential")
        credential = await self._credentials.load(credential_id)
        if credential.delivery_reports is None:
            raise MalformedWebhook(
                "the surface's credential has no delivery_reports mapping (see the credential "
                "documentation)"
            )
        reports, notes = read_reports(read_body(body, content_type), credential.delivery_reports)
        now = self._clock()
        async with self._db.transaction() as conn:
            applied, unknown, ignored = await messages_repo.apply_deliveries(
                conn,
                surface.id,
                [(r.provider_message_id, r.status, r.error) for r in reports],
                now,
            )
        if unknown:
            log.info(
                "surface %s: %d delivery report(s) for unknown message ids", surface.id, unknown
            )
        for note in notes:
            log.info("surface %s: delivery report skipped: %s", surface.id, note)
        return {
            "received": len(reports) + len(notes),
            "applied": applied,
            "unknown": unknown,
            "ignored": ignored + len(notes),
        }
