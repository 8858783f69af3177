"""Profile use cases: upsert, read, delete, list, and streamed imports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smsbridge.domain.phones import normalize_phone
from smsbridge.domain.profile_import import (
    CsvReader,
    Item,
    LineError,
    NdjsonReader,
    ProfileReader,
)
from smsbridge.domain.profiles import Profile, check_external_id, parse_profile
from smsbridge.errors import InvalidInput, NotFound
from smsbridge.services.cpu_lane import CpuLane
from smsbridge.services.pagination import Page, check_limit, decode_cursor, page_of
from smsbridge.storage import profiles as repo
from smsbridge.storage.database import Database

IMPORT_BATCH = 5000
MAX_REPORTED_ERRORS = 1000
FORMATS = {"application/x-ndjson": "ndjson", "application/jsonl": "ndjson", "text/csv": "csv"}


def profile_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "external_id": row["external_id"],
        "phone": row["phone"],
        "attributes": row["attributes"],
        "timezone": row["timezone"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def import_format(content_type: str | None) -> str:
    """``ndjson`` or ``csv`` from a Content-Type header (parameters such as charset ignored)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in FORMATS:
        raise InvalidInput.one(
            "Content-Type",
            "must be application/x-ndjson (one JSON profile per line) or text/csv "
            "(header external_id,phone,…)",
        )
    return FORMATS[media]


@dataclass
class ImportResult:
    imported: int = 0
    error_count: int = 0
    errors: list[LineError] = field(default_factory=list)
    lines: int = 0

    def add_error(self, error: LineError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


ImportProgress = Callable[[int, ImportResult], None]
"""Called after each batch with the bytes read so far and the running result."""


class ProfileService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime],
        default_region: str | None = None,
        cpu: CpuLane | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._region = default_region
        self._cpu = cpu or CpuLane("profiles")

    async def put(self, external_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        profile = parse_profile(data, external_id=external_id, region=self._region)
        async with self._db.transaction() as conn:
            await repo.upsert_many(conn, [profile], self._clock())
            row = await repo.get_profile(conn, external_id)
        if row is None:  # pragma: no cover - written in the same transaction
            raise NotFound(f"no profile {external_id}")
        return profile_view(row)

    async def get(self, external_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = await repo.get_profile(conn, check_external_id(external_id))
        if row is None:
            raise NotFound(f"no profile {external_id}")
        return profile_view(row)

    async def delete(self, external_id: str) -> None:
        async with self._db.transaction() as conn:
            if not await repo.delete_profile(conn, check_external_id(external_id)):
                raise NotFound(f"no profile {external_id}")

    async def list(
        self, *, limit: int = 50, cursor: str | None = None, phone: str | None = None
    ) -> Page[dict[str, Any]]:
        limit = check_limit(limit)
        number = normalize_phone(phone, "phone", self._region) if phone else None
        async with self._db.read() as conn:
            rows = await repo.list_profiles(
                conn, limit=limit + 1, after=decode_cursor(cursor, prefixed=False), phone=number
            )
        return page_of(rows, limit, last_id=lambda r: str(r["external_id"]), view=profile_view)

    async def count(self) -> int:
        async with self._db.read() as conn:
            return await repo.count_profiles(conn)

    async def import_stream(
        self,
        chunks: AsyncIterable[bytes],
        content_type: str | None,
        *,
        progress: ImportProgress | None = None,
    ) -> ImportResult:
        """Import profiles as the bytes arrive: good records are upserted in batches (each
        batch its own transaction), bad ones reported by line; the file is never held whole."""
        kind = import_format(content_type)
        reader: ProfileReader = (
            NdjsonReader(self._region) if kind == "ndjson" else CsvReader(self._region)
        )
        result = ImportResult()
        batch: list[Profile] = []
        read = 0
        writing: asyncio.Task[None] | None = None

        async def written() -> None:
            """Wait for the batch being written (one at a time) and report progress."""
            nonlocal writing
            if writing is not None:
                task, writing = writing, None
                await task
            if progress is not None:
                progress(read, result)

        async def write(profiles: list[Profile]) -> None:
            # the last of an id repeated within the batch wins, as it would row by row
            latest = list({p.external_id: p for p in profiles}.values())
            await self._db.dialect_ops.import_profiles(self._db, latest, self._clock())
            result.imported += len(profiles)

        async def flush() -> None:
            """Start writing the batch (after the previous one), and keep parsing meanwhile:
            on PostgreSQL the write is the server's work, on SQLite the writer thread's."""
            nonlocal writing, batch
            await written()
            if batch:
                writing = asyncio.create_task(write(batch))
                batch = []

        def take(items: Iterable[Item]) -> None:
            for item in items:
                if isinstance(item, LineError):
                    result.add_error(item)
                else:
                    batch.append(item)

        try:
            async for chunk in chunks:
                read += len(chunk)
                # Checking a profile (its phone number above all) costs ~0.03 ms: a chunk's
                # worth would stall the event loop. Parsed on the CPU lane.
                take(await self._cpu.run(_parsed, reader, chunk))
                if len(batch) >= IMPORT_BATCH:
                    await flush()
            take(await self._cpu.run(_finished, reader))
            await flush()
            await written()
            await self._db.dialect_ops.imported(self._db, result.imported)
        finally:
            if writing is not None:  # the upload failed midway: the batch in flight lands
                with contextlib.suppress(Exception):
                    await writing
        result.lines = reader.lines_read
        return result


def _parsed(reader: ProfileReader, chunk: bytes) -> list[Item]:
    return list(reader.feed(chunk))


def _finished(reader: ProfileReader) -> list[Item]:
    return list(reader.finish())
