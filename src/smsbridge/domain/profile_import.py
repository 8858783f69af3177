"""Streaming readers for profile imports: NDJSON and CSV, fed chunk by chunk.

A reader never holds more than the current record: bytes go in as they arrive, checked
profiles or per-line problems come out, numbered by the line where their record starts (the
CSV header is line 1). Lines are split on ``\\n`` in bytes (safe in UTF-8) and decoded one by
one, so one badly encoded line is one error, not a failed import.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from smsbridge.domain.profiles import ATTRIBUTE_NAME, Profile, parse_profile
from smsbridge.errors import InvalidInput

MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class LineError:
    line: int
    field: str | None
    message: str


Item = Profile | LineError


class ProfileReader:
    """Common shape of the readers: ``feed`` chunks, then ``finish``."""

    def __init__(self, region: str | None = None) -> None:
        self._lines = _Lines()
        self._region = region

    @property
    def lines_read(self) -> int:
        return self._lines.count

    def feed(self, chunk: bytes) -> Iterator[Item]:
        raise NotImplementedError

    def finish(self) -> Iterator[Item]:
        raise NotImplementedError


class _Lines:
    """Bytes in, numbered lines out (without their line ending)."""

    def __init__(self) -> None:
        self._pending = b""
        self._number = 0
        self._overlong = False

    @property
    def count(self) -> int:
        return self._number

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes | None]]:
        """Complete lines in ``chunk``; ``None`` stands for a line over the size limit."""
        data = self._pending + chunk
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            self._number += 1
            line = data[start:end]
            yield self._number, None if self._overlong or len(line) > MAX_LINE_BYTES else line
            self._overlong = False
            start = end + 1
        self._pending = data[start:]
        if len(self._pending) > MAX_LINE_BYTES:  # drop the rest of this line as it comes
            self._pending, self._overlong = b"", True

    def finish(self) -> Iterator[tuple[int, bytes | None]]:
        if self._pending or self._overlong:
            self._number += 1
            yield self._number, None if self._overlong else self._pending
        self._pending, self._overlong = b"", False


def _decode(raw: bytes, first: bool) -> str:
    text = raw.decode("utf-8")
    if first:
        text = text.removeprefix("\ufeff")
    return text.removesuffix("\r")


def _errors(line: int, exc: InvalidInput) -> list[LineError]:
    return [LineError(line, e.field, e.message) for e in exc.errors]


class NdjsonReader(ProfileReader):
    """One profile object per line (``{"external_id", "phone", "attributes", "timezone"}``)."""

    def feed(self, chunk: bytes) -> Iterator[Item]:
        for number, raw in self._lines.feed(chunk):
            yield from self._parse(number, raw)

    def finish(self) -> Iterator[Item]:
        for number, raw in self._lines.finish():
            yield from self._parse(number, raw)

    def _parse(self, number: int, raw: bytes | None) -> Iterator[Item]:
        if raw is None:
            yield LineError(number, None, f"line longer than {MAX_LINE_BYTES} bytes")
            return
        if not raw.strip():
            return
        try:
            data = orjson.loads(raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw)
        except orjson.JSONDecodeError as exc:
            yield LineError(number, None, f"not JSON: {exc}")
            return
        if not isinstance(data, dict):
            yield LineError(number, None, "each line must be a JSON object")
            return
        try:
            yield parse_profile(data, region=self._region)
        except InvalidInput as exc:
            yield from _errors(number, exc)


class CsvReader(ProfileReader):
    """A header line ``external_id,phone[,timezone],<attribute columns>``, then one profile per
    record. Attribute values are strings; empty cells are left out. Quoted fields may span
    lines (RFC 4180)."""

    def __init__(self, region: str | None = None) -> None:
        super().__init__(region)
        self._header: list[str] | None = None
        self._record: list[str] = []
        self._record_line = 0
        self._failed_header = False

    def feed(self, chunk: bytes) -> Iterator[Item]:
        for number, raw in self._lines.feed(chunk):
            yield from self._take(number, raw)

    def finish(self) -> Iterator[Item]:
        for number, raw in self._lines.finish():
            yield from self._take(number, raw)
        if self._record:
            yield LineError(self._record_line, None, "a quoted field is never closed")
            self._record = []
        if self._header is None and not self._failed_header:
            yield LineError(1, None, "the file is empty: a header line is expected")

    def _take(self, number: int, raw: bytes | None) -> Iterator[Item]:
        if raw is None:
            self._record = []
            yield LineError(number, None, f"line longer than {MAX_LINE_BYTES} bytes")
            return
        try:
            text = _decode(raw, number == 1)
        except UnicodeDecodeError:
            self._record = []
            yield LineError(number, None, "not valid UTF-8")
            return
        if not self._record:
            if not text.strip():
                return
            self._record_line = number
        self._record.append(text)
        joined = "\n".join(self._record)
        if joined.count('"') % 2:  # inside a quoted field: the record goes on
            return
        self._record = []
        yield from self._row(self._record_line, next(csv.reader([joined])))

    def _row(self, line: int, cells: list[str]) -> Iterator[Item]:
        if self._header is None:
            if self._failed_header:
                return
            yield from self._set_header(line, [c.strip() for c in cells])
            return
        if len(cells) != len(self._header):
            yield LineError(
                line, None, f"{len(cells)} columns where the header has {len(self._header)}"
            )
            return
        data: dict[str, Any] = {"attributes": {}}
        for name, value in zip(self._header, cells, strict=True):
            if name in ("external_id", "phone", "timezone"):
                data[name] = value.strip()
            elif value != "":
                data["attributes"][name] = value
        try:
            yield parse_profile(data, region=self._region)
        except InvalidInput as exc:
            yield from _errors(line, exc)

    def _set_header(self, line: int, names: list[str]) -> Iterator[Item]:
        missing = [n for n in ("external_id", "phone") if n not in names]
        repeated = sorted({n for n in names if names.count(n) > 1})
        invalid = [
            n
            for n in names
            if n not in ("external_id", "phone", "timezone") and not ATTRIBUTE_NAME.fullmatch(n)
        ]
        if missing or repeated or invalid:
            self._failed_header = True
            if missing:
                problem = f"missing column(s): {', '.join(missing)}"
            elif repeated:
                problem = f"repeated column(s): {', '.join(repeated)}"
            else:
                problem = (
                    f"column name(s) {', '.join(repr(n) for n in invalid)}: attribute columns "
                    "are named with letters, digits and _"
                )
            yield LineError(line, None, f"header: {problem}; every following line is skipped")
            return
        self._header = names
