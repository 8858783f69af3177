"""The streaming NDJSON and CSV readers, fed in arbitrary chunks."""

from __future__ import annotations

import pytest

from smsbridge.domain.profile_import import (
    MAX_LINE_BYTES,
    CsvReader,
    LineError,
    NdjsonReader,
    ProfileReader,
)
from smsbridge.domain.profiles import Profile


def _read(reader: ProfileReader, data: bytes, chunk: int) -> list[Profile | LineError]:
    items: list[Profile | LineError] = []
    for start in range(0, len(data), chunk):
        items.extend(reader.feed(data[start : start + chunk]))
    items.extend(reader.finish())
    return items


@pytest.mark.parametrize("chunk", [1, 3, 64, 100_000])
def test_csv_records_are_the_same_whatever_the_chunking(chunk: int) -> None:
    data = (
        "\ufeffexternal_id,phone,name,timezone\r\n"
        'a,+33612345678,"Doe, Jane",Europe/Paris\r\n'
        'b,+33612345679,"multi\nline ""q""",\n'
        "\n"
        "c,+33612345670,Zoé,"
    ).encode()
    items = _read(CsvReader(), data, chunk)
    assert items == [
        Profile("a", "+33612345678", {"name": "Doe, Jane"}, "Europe/Paris"),
        Profile("b", "+33612345679", {"name": 'multi\nline "q"'}, None),
        Profile("c", "+33612345670", {"name": "Zoé"}, None),
    ]


def test_csv_errors_carry_the_line_where_the_record_starts() -> None:
    data = b'external_id,phone,x\n"u1",+3361234567,"a\nb"\nu2,+33612345678\nu3,+33612345679,"open\n'
    items = _read(CsvReader(), data, 5)
    errors = [i for i in items if isinstance(i, LineError)]
    assert [(e.line, e.field) for e in errors] == [(2, "phone"), (4, None), (5, None)]
    assert "never closed" in errors[-1].message


def test_csv_empty_file_and_bad_header() -> None:
    assert [e.message for e in _read(CsvReader(), b"", 10)] == [  # type: ignore[union-attr]
        "the file is empty: a header line is expected"
    ]
    items = _read(CsvReader(), b"external_id,phone,first name\nu,+33612345678,x\n", 10)
    assert len(items) == 1 and isinstance(items[0], LineError)
    assert "'first name'" in items[0].message


def test_ndjson_lines_and_errors() -> None:
    data = (
        b'{"external_id":"a","phone":"+33612345678"}\r\n'
        b"\n"
        b"{broken\n"
        b'{"external_id":"b","phone":"+33612345679","attributes":[]}\n'
        b'{"external_id":"c","phone":"+33612345670","attributes":{"n":1}}'
    )
    items = _read(NdjsonReader(), data, 7)
    assert items[0] == Profile("a", "+33612345678", {}, None)
    assert isinstance(items[1], LineError) and items[1].line == 3
    assert isinstance(items[2], LineError) and (items[2].line, items[2].field) == (4, "attributes")
    assert items[3] == Profile("c", "+33612345670", {"n": 1}, None)


def test_overlong_lines_are_one_error_and_memory_stays_bounded() -> None:
    reader = NdjsonReader()
    items = list(reader.feed(b'{"external_id":"x","phone":"' + b"9" * (MAX_LINE_BYTES * 3)))
    items += list(reader.feed(b'"}\n{"external_id":"y","phone":"+33612345678"}\n'))
    items += list(reader.finish())
    assert isinstance(items[0], LineError) and "longer than" in items[0].message
    assert items[1] == Profile("y", "+33612345678", {}, None)
    assert reader.lines_read == 2


def test_national_numbers_with_a_region() -> None:
    items = _read(CsvReader("FR"), b"external_id,phone\nf,06 12 34 56 78\n", 4)
    assert items == [Profile("f", "+33612345678", {}, None)]
