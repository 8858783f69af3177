"""Streaming readers for profile imports: NDJSON and CSV, fed chunk by chunk.

A reader never holds more than the current record: bytes go in as they arrive, checked
profiles or per-line problems come out, numbered by the line where their record starts (the
CSV header is line 1). Lines are split on ``\\n`` in bytes (safe in UTF-8) and decoded one by
one, so one badly encoded line is one error, not a failed import.

Work is linear in the input and memory bounded by :data:`MAX_LINE_BYTES`: a line, and a CSV
record spanning lines, is refused as one error past that size, and no byte is scanned again
and again (a CSV record's quote state is kept line by line, never recounted over the record).
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
    """Bytes in, numbered lines out (without their line ending).

    Each chunk is searched once: the start of an unfinished line is kept as parts, joined when
    its end arrives, so tiny chunks cost no more than big ones.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._number = 0
        self._overlong = False

    @property
    def count(self) -> int:
        return self._number

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes | None]]:
        """Complete lines in ``chunk``; ``None`` stands for a line over the size limit."""
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            self._number += 1
            if self._overlong or self._size + end - start > MAX_LINE_BYTES:
                line = None
            else:
                line = b"".join([*self._parts, chunk[start:end]])
            self._parts, self._size, self._overlong = [], 0, False
            yield self._number, line
            start = end + 1
        if start < len(chunk) and not self._overlong:
            self._size += len(chunk) - start
            if self._size > MAX_LINE_BYTES:  # drop the rest of this line as it comes
                self._parts, self._size, self._overlong = [], 0, True
            else:
                self._parts.append(chunk[start:])

    def finish(self) -> Iterator[tuple[int, bytes | None]]:
        if self._parts or self._overlong:
            self._number += 1
            yield self._number, None if self._overlong else b"".join(self._parts)
        self._parts, self._size, self._overlong = [], 0, False


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
    lines (RFC 4180), up to :data:`MAX_LINE_BYTES` for the whole record.

    A quoted field that is not closed within that limit (or by the end of the file) is one
    error on the line where it opened; the lines it swallowed are then read again as records of
    their own, so one stray quote costs one line, not the rest of the file. They are read at
    most twice: every line inside an open field holds an even number of quotes, so none of them
    opens a field again.
    """

    def __init__(self, region: str | None = None) -> None:
        super().__init__(region)
        self._header: list[str] | None = None
        self._record: list[tuple[int, str]] = []  # (line number, text) of an unfinished record
        self._record_bytes = 0
        self._failed_header = False

    def feed(self, chunk: bytes) -> Iterator[Item]:
        for number, raw in self._lines.feed(chunk):
            yield from self._take(number, raw)

    def finish(self) -> Iterator[Item]:
        for number, raw in self._lines.finish():
            yield from self._take(number, raw)
        yield from self._abandon("a quoted field is never closed")
        if self._header is None and not self._failed_header:
            yield LineError(1, None, "the file is empty: a header line is expected")

    def _take(self, number: int, raw: bytes | None) -> Iterator[Item]:
        if raw is None:
            yield from self._abandon(f"a quoted field is not closed before line {number}")
            yield LineError(number, None, f"line longer than {MAX_LINE_BYTES} bytes")
            return
        try:
            text = _decode(raw, number == 1)
        except UnicodeDecodeError:
            yield from self._abandon(f"a quoted field is not closed before line {number}")
            yield LineError(number, None, "not valid UTF-8")
            return
        if not self._record:
            yield from self._line(number, text, len(raw))
            return
        # inside a quoted field: this line continues the record
        self._record.append((number, text))
        self._record_bytes += 1 + len(raw)
        if text.count('"') % 2:  # the field closes on this line
            yield from self._complete()
        elif self._record_bytes > MAX_LINE_BYTES:
            yield from self._abandon(
                f"a quoted field is not closed within {MAX_LINE_BYTES} bytes (the longest "
                "record); the lines after it are read as records of their own"
            )

    def _line(self, number: int, text: str, size: int) -> Iterator[Item]:
        """A line that starts a record."""
        if not text.strip():
            return
        self._record = [(number, text)]
        self._record_bytes = size
        if text.count('"') % 2 == 0:
            yield from self._complete()

    def _complete(self) -> Iterator[Item]:
        record, self._record = self._record, []
        line = record[0][0]
        if self._record_bytes > MAX_LINE_BYTES:
            yield LineError(line, None, f"record longer than {MAX_LINE_BYTES} bytes")
            return
        joined = "\n".join(text for _, text in record)
        yield from self._row(line, next(csv.reader([joined])))

    def _abandon(self, message: str) -> Iterator[Item]:
        """Give up the unfinished record: one error where it starts, then its other lines as
        records of their own (each holds an even number of quotes, so none opens a field)."""
        if not self._record:
            return
        record, self._record = self._record, []
        yield LineError(record[0][0], None, message)
        for number, text in record[1:]:
            yield from self._line(number, text, len(text.encode()))

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
