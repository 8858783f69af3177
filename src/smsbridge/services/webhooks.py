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

from smsbridge.domain.credentials import Credential
from smsbridge.domain.signatures import standard_webhooks_valid, twilio_request_valid
from smsbridge.domain.webhooks import WebhookRequest, read_body, read_reports
from smsbridge.errors import MalformedWebhook, NotFound, WebhookNotAuthentic
from smsbridge.services.credentials import CredentialService
from smsbridge.storage import messages as messages_repo
from smsbridge.storage import surfaces as surfaces_repo
from smsbridge.storage.database import Database
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


class WebhookService:
    def __init__(
        self, db: Database, credentials: CredentialService, *, clock: Callable[[], datetime]
    ) -> None:
        self._db = db
        self._credentials = credentials
        self._clock = clock

    async def delivery_reports(self, token: str, request: WebhookRequest) -> dict[str, Any]:
        surface, credential = await webhook_target(
            self._db, self._credentials, token, kind="status"
        )
        assert credential.delivery_reports is not None  # checked by webhook_target
        verify_signature(credential, request, self._clock())
        document = read_body(request.body, request.content_type)
        reports, notes = read_reports(document, credential.delivery_reports)
        now = self._clock()
        async with self._db.transaction() as conn:
            applied, unknown, ignored = await messages_repo.apply_deliveries(
                conn,
                surface.id,
                [(r.provider_message_id, r.status, r.error, r.provider_status) for r in reports],
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
