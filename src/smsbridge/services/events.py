"""Event endpoint use cases: create (the signing secret shown once), read, change, delete,
rotate the secret (the previous one keeps signing during an overlap), send a test event,
read the deliveries log and replay a failed delivery."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from smsbridge.delivery.events import EventDispatcher, EventSigner
from smsbridge.domain.events import (
    DEFAULT_OVERLAP,
    MAX_DESCRIPTION,
    MAX_OVERLAP,
    TEST_TYPE,
    DeliveryStatus,
    check_event_types,
    check_event_url,
    new_secret,
    payload,
    secret_hint,
)
from smsbridge.domain.ids import new_id
from smsbridge.errors import Conflict, FieldError, InvalidInput, NotFound, phrase
from smsbridge.services.pagination import Page, check_limit, decode_cursor, page_of
from smsbridge.services.secretbox import SecretBox
from smsbridge.storage import events as repo
from smsbridge.storage.database import Database
from smsbridge.storage.event_backlog import PAUSED, pause_endpoint

DELIVERY_PREFIX = "dlv_"


def endpoint_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "description": row["description"],
        "event_types": list(row["event_types"]),
        "enabled": bool(row["enabled"]),
        "secret_hint": row["secret_hint"],
        "previous_secret_expires_at": row["previous_expires_at"],
        "failing_since": row["failing_since"],
        "disabled_reason": row["disabled_reason"],
        "disabled_at": row["disabled_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def delivery_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{DELIVERY_PREFIX}{row['id']}",
        "event_id": row["event_id"],
        "type": row["type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "created_at": row["created_at"],
        "first_attempt_at": row["first_attempt_at"],
        "last_attempt_at": row["last_attempt_at"],
        "next_attempt_at": row["next_attempt_at"]
        if row["status"] == "pending" and row["next_attempt_at"].year < PAUSED.year
        else None,
        "last_status": row["last_status"],
        "last_response": row["last_response"],
        "last_error": row["last_error"],
        "payload": orjson.loads(row["body"]),
    }


def delivery_number(delivery_id: str) -> int:
    digits = delivery_id.removeprefix(DELIVERY_PREFIX)
    if not delivery_id.startswith(DELIVERY_PREFIX) or not digits.isascii() or not digits.isdigit():
        raise NotFound(f"no delivery {delivery_id[:60]}")
    if len(digits) > 18:
        raise NotFound(f"no delivery {delivery_id[:60]}")
    return int(digits)


class EventEndpointService:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        clock: Callable[[], datetime],
        allow_private_urls: bool,
        attempts: EventDispatcher,
        signer: EventSigner,
    ) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._allow_private = allow_private_urls
        self._attempts = attempts
        self._signer = signer

    # --- endpoints ---------------------------------------------------------------------------

    def _fields(self, doc: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
        errors: list[FieldError] = []
        values: dict[str, Any] = {}
        if creating or "url" in doc:
            try:
                values["url"] = check_event_url(doc.get("url"), allow_private=self._allow_private)
            except InvalidInput as exc:
                errors.extend(exc.errors)
        if creating or "event_types" in doc:
            try:
                values["event_types"] = check_event_types(doc.get("event_types"))
            except InvalidInput as exc:
                errors.extend(exc.errors)
        if "description" in doc:
            description = doc["description"]
            if description is not None and (
                not isinstance(description, str) or len(description) > MAX_DESCRIPTION
            ):
                errors.append(
                    FieldError(
                        "description",
                        phrase("must be at most %(most)s characters", most=MAX_DESCRIPTION),
                    )
                )
            else:
                values["description"] = description.strip() or None if description else None
        if "enabled" in doc:
            if not isinstance(doc["enabled"], bool):
                errors.append(FieldError("enabled", phrase("must be true or false")))
            else:
                values["enabled"] = doc["enabled"]
        if errors:
            raise InvalidInput(errors)
        return values

    async def create(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The new endpoint's view with its signing secret (the only time it is shown)."""
        values = self._fields(doc, creating=True)
        now = self._clock()
        secret = new_secret()
        row = {
            "id": new_id("ep"),
            "url": values["url"],
            "description": values.get("description"),
            "event_types": values["event_types"],
            "enabled": values.get("enabled", True),
            "secrets": self._box.seal({"current": secret}),
            "secret_hint": secret_hint(secret),
            "previous_expires_at": None,
            "failing_since": None,
            "disabled_reason": None,
            "disabled_at": None,
            "created_at": now,
            "updated_at": now,
        }
        async with self._db.transaction(urgent=True) as conn:
            await repo.insert_endpoint(conn, row)
        return {**endpoint_view(row), "secret": secret}

    async def get(self, endpoint_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = await repo.get_endpoint(conn, endpoint_id)
        if row is None:
            raise NotFound(f"no event endpoint {endpoint_id[:60]}")
        return endpoint_view(row)

    async def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[dict[str, Any]]:
        check_limit(limit)
        after = decode_cursor(cursor)
        async with self._db.read() as conn:
            rows = await repo.list_endpoints(conn, limit=limit + 1, after=after)
        return page_of(rows, limit, last_id=lambda r: str(r["id"]), view=endpoint_view)

    async def update(self, endpoint_id: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        values = self._fields(patch, creating=False)
        now = self._clock()
        async with self._db.transaction(urgent=True) as conn:
            row = await repo.lock_endpoint(conn, endpoint_id)
            if row is None:
                raise NotFound(f"no event endpoint {endpoint_id[:60]}")
            if values.get("enabled") is True and not row["enabled"]:
                # enabled again by hand: the notice and the run of failures are over
                values.update(disabled_reason=None, disabled_at=None, failing_since=None)
            elif values.get("enabled") is False and row["enabled"]:
                values.update(disabled_reason=None, disabled_at=now)
            if values:
                values["updated_at"] = now
                await repo.update_endpoint(conn, endpoint_id, values)
                if "enabled" in values and values["enabled"] != row["enabled"]:
                    await pause_endpoint(conn, endpoint_id, paused=not values["enabled"], now=now)
                row.update(values)
        return endpoint_view(row)

    async def delete(self, endpoint_id: str) -> None:
        async with self._db.transaction(urgent=True) as conn:
            if not await repo.delete_endpoint(conn, endpoint_id):
                raise NotFound(f"no event endpoint {endpoint_id[:60]}")

    async def rotate_secret(
        self, endpoint_id: str, overlap: timedelta = DEFAULT_OVERLAP
    ) -> dict[str, Any]:
        """A new signing secret (returned once); the current one becomes the previous one,
        still signing beside the new one for ``overlap`` (0: not at all)."""
        if not timedelta(0) <= overlap <= MAX_OVERLAP:
            limit = int(MAX_OVERLAP.total_seconds())
            raise InvalidInput.one(
                "overlap_seconds", phrase("must be between 0 and %(most)s", most=limit)
            )
        now = self._clock()
        secret = new_secret()
        async with self._db.transaction(urgent=True) as conn:
            row = await repo.lock_endpoint(conn, endpoint_id)
            if row is None:
                raise NotFound(f"no event endpoint {endpoint_id[:60]}")
            current = self._box.open(row["secrets"])["current"]
            sealed: dict[str, str] = {"current": secret}
            if overlap > timedelta(0):
                sealed["previous"] = current
            values = {
                "secrets": self._box.seal(sealed),
                "secret_hint": secret_hint(secret),
                "previous_expires_at": now + overlap if overlap > timedelta(0) else None,
                "updated_at": now,
            }
            await repo.update_endpoint(conn, endpoint_id, values)
            row.update(values)
        return {**endpoint_view(row), "secret": secret}

    def callback_secret(self) -> str:
        """The secret that signs events posted to messages' ``callback_url``."""
        return self._signer.callback_secret

    def callback_secrets(self) -> Sequence[str]:
        """Every secret signing them: the first secret key's, then those of the older keys
        still configured (a rotation's overlap)."""
        return tuple(self._signer.callback_secrets)

    # --- deliveries --------------------------------------------------------------------------

    async def send_test(self, endpoint_id: str) -> dict[str, Any]:
        """A test event, posted now (whatever the endpoint subscribes to, even disabled);
        retried like any other delivery when it fails."""
        now = self._clock()
        async with self._db.transaction(urgent=True) as conn:
            row = await repo.get_endpoint(conn, endpoint_id)
            if row is None:
                raise NotFound(f"no event endpoint {endpoint_id[:60]}")
            event_id = new_id("evt")
            data = {"endpoint_id": endpoint_id, "message": "a test event from smsbridge"}
            body = orjson.dumps(payload(TEST_TYPE, now, data)).decode()
            (number,) = await repo.insert_deliveries(
                conn,
                [
                    {
                        "event_id": event_id,
                        "endpoint_id": endpoint_id,
                        "target_url": None if row["enabled"] else row["url"],
                        "type": TEST_TYPE,
                        "body": body,
                        "ordering_key": None,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "created_at": now,
                        "next_attempt_at": now,
                        "lease_token": 0,
                    }
                ],
            )
        await self._attempts.deliver_once(only=number)
        return await self.delivery(endpoint_id, f"{DELIVERY_PREFIX}{number}")

    async def delivery(self, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        number = delivery_number(delivery_id)
        async with self._db.read() as conn:
            row = await repo.get_delivery(conn, number, endpoint_id)
        if row is None:
            raise NotFound(f"no delivery {delivery_id[:60]} for event endpoint {endpoint_id[:60]}")
        return delivery_view(row)

    async def deliveries(
        self,
        endpoint_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        status: str | None = None,
    ) -> Page[dict[str, Any]]:
        check_limit(limit)
        if status is not None and status not in {s.value for s in DeliveryStatus}:
            known = ", ".join(s.value for s in DeliveryStatus)
            raise InvalidInput.one("status", f"must be one of: {known}")
        after = decode_cursor(cursor)
        before = delivery_number(after) if after is not None else None
        async with self._db.read() as conn:
            if await repo.get_endpoint(conn, endpoint_id) is None:
                raise NotFound(f"no event endpoint {endpoint_id[:60]}")
            rows = await repo.list_deliveries(
                conn, endpoint_id, limit=limit + 1, before=before, status=status
            )
        return page_of(
            rows, limit, last_id=lambda r: f"{DELIVERY_PREFIX}{r['id']}", view=delivery_view
        )

    async def replay(self, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        """A failed or dead delivery pending again (the same ``webhook-id``), due now."""
        number = delivery_number(delivery_id)
        async with self._db.transaction(urgent=True) as conn:
            row = await repo.get_delivery(conn, number, endpoint_id)
            if row is None:
                raise NotFound(
                    f"no delivery {delivery_id[:60]} for event endpoint {endpoint_id[:60]}"
                )
            if not await repo.replay(conn, number, self._clock()):
                raise Conflict(
                    phrase(
                        "only failed or dead deliveries replay; this one is %(status)s",
                        status=row["status"],
                    )
                )
        self._attempts.wake()
        return await self.delivery(endpoint_id, delivery_id)
