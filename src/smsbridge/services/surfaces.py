"""Surface use cases: CRUD with references to existing credentials."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smsbridge.domain.ids import new_id
from smsbridge.domain.names import listed_names
from smsbridge.domain.surfaces import Surface, parse_surface
from smsbridge.errors import Conflict, FieldError, InvalidInput, NotFound, phrase
from smsbridge.services.pagination import Page, check_limit, decode_cursor, page_of
from smsbridge.storage import surfaces as repo
from smsbridge.storage.database import Database


@dataclass(frozen=True)
class SurfaceView:
    id: str
    surface: Surface
    inbound_webhook_url: str
    status_webhook_url: str
    created_at: datetime
    updated_at: datetime

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.surface.document(),
            "inbound_webhook_url": self.inbound_webhook_url,
            "status_webhook_url": self.status_webhook_url,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


_NESTED = ("link_tracking", "keywords", "replies", "quiet_hours", "frequency_cap")
_SWITCHED_OFF_BY_NULL = ("quiet_hours", "frequency_cap")


def merge_surface_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A partial update: nested objects merge key by key, ``null`` keeps the current value —
    except for ``quiet_hours`` and ``frequency_cap``, which ``null`` switches off."""
    document = dict(current)
    for key, value in patch.items():
        if value is None:
            if key in _SWITCHED_OFF_BY_NULL:
                document[key] = None
            continue
        if key in _NESTED and isinstance(value, Mapping) and isinstance(document.get(key), Mapping):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return document


class SurfaceService:
    def __init__(self, db: Database, *, public_url: str, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._public_url = public_url.rstrip("/")
        self._clock = clock

    def _view(self, row: repo.SurfaceRow) -> SurfaceView:
        return SurfaceView(
            id=row.id,
            surface=parse_surface(row.document),
            inbound_webhook_url=f"{self._public_url}/hooks/inbound/{row.inbound_token}",
            status_webhook_url=f"{self._public_url}/hooks/status/{row.status_token}",
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def _check_credentials(self, conn: Any, surface: Surface) -> list[str]:
        ids = [surface.credential_id, *surface.fallback_credential_ids]
        missing = await repo.missing_credentials(conn, ids)
        errors = []
        if surface.credential_id in missing:
            errors.append(
                FieldError(
                    "credential_id", phrase("no credential %(id)s", id=surface.credential_id)
                )
            )
        for index, fallback in enumerate(surface.fallback_credential_ids):
            if fallback in missing:
                errors.append(
                    FieldError(
                        f"fallback_credential_ids[{index}]",
                        phrase("no credential %(id)s", id=fallback),
                    )
                )
        if errors:
            raise InvalidInput(errors)
        return ids

    async def create(self, document: Mapping[str, Any]) -> SurfaceView:
        surface = parse_surface(document)
        now = self._clock()
        row = repo.SurfaceRow(
            id=new_id("srf"),
            name=surface.name,
            document=surface.document(),
            inbound_token=secrets.token_urlsafe(24),
            status_token=secrets.token_urlsafe(24),
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as conn:
            ids = await self._check_credentials(conn, surface)
            await repo.insert_surface(conn, row, ids)
        return self._view(row)

    async def get(self, surface_id: str) -> SurfaceView:
        async with self._db.read() as conn:
            row = await repo.get_surface(conn, surface_id)
        if row is None:
            raise NotFound(f"no surface {surface_id}")
        return self._view(row)

    async def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[SurfaceView]:
        limit = check_limit(limit)
        async with self._db.read() as conn:
            rows = await repo.list_surfaces(conn, limit=limit + 1, after=decode_cursor(cursor))
        return page_of(rows, limit, last_id=lambda r: r.id, view=self._view)

    async def update(self, surface_id: str, patch: Mapping[str, Any]) -> SurfaceView:
        async with self._db.transaction() as conn:
            row = await repo.get_surface(conn, surface_id)
            if row is None:
                raise NotFound(f"no surface {surface_id}")
            document = merge_surface_patch(row.document, patch)
            surface = parse_surface(document)
            ids = await self._check_credentials(conn, surface)
            updated = repo.SurfaceRow(
                row.id,
                surface.name,
                surface.document(),
                row.inbound_token,
                row.status_token,
                row.created_at,
                self._clock(),
            )
            await repo.update_surface(conn, updated, ids)
        return self._view(updated)

    async def rotate_tokens(self, surface_id: str) -> SurfaceView:
        """New webhook URLs for the surface; the old ones stop working at once (give the new
        ones to the provider first if it must not miss a post)."""
        async with self._db.transaction() as conn:
            changed = await repo.set_tokens(
                conn,
                surface_id,
                inbound=secrets.token_urlsafe(24),
                status=secrets.token_urlsafe(24),
                at=self._clock(),
            )
            if not changed:
                raise NotFound(f"no surface {surface_id}")
            row = await repo.get_surface(conn, surface_id)
        assert row is not None
        return self._view(row)

    async def delete(self, surface_id: str) -> None:
        async with self._db.transaction() as conn:
            if await repo.get_surface(conn, surface_id) is None:
                raise NotFound(f"no surface {surface_id}")
            if await repo.has_pending_messages(conn, surface_id):
                raise Conflict(
                    phrase(
                        "the surface has scheduled or queued messages; cancel them or let them "
                        "finish before deleting it"
                    )
                )
            names, count = await repo.campaigns_using(conn, surface_id)
            if count:
                raise Conflict(
                    phrase(
                        "the surface is used by %(count)s campaign(s): %(names)s; a surface "
                        "that campaigns were sent on is kept for their reports",
                        count=count,
                        names=listed_names(names, count),
                    )
                )
            await repo.delete_surface(conn, surface_id)
