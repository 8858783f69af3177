"""The streaming NDJSON and CSV readers, fed in arbitrary chunks."""

from __future__ import annotations

import tracemalloc

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


def _csv_people(first: int, count: int, note: str = "n") -> bytes:
    return b"".join(f"u{i},+3361{i:07d},{note}\n".encode() for i in range(first, first + count))


def test_an_unclosed_quote_costs_its_own_line_in_bounded_memory() -> None:
    """Issue 15.2: a stray quote used to make every following line re-scan the whole record
    (quadratic; 4 MB took 13 s with the event loop blocked) and swallow the rest of the file.
    Now the record stops at the line limit and the lines it held are read again."""
    header = b"external_id,phone,note\n"
    people = _csv_people(0, 2_000, "x" * 2_000)  # 4 MB of good records after the stray quote
    data = header + b'stray,+33612345678,"never closed\n' + people
    assert len(data) > 4_000_000
    reader = CsvReader()
    imported = 0
    errors: list[LineError] = []
    tracemalloc.start()
    try:
        for start in range(0, len(data), 65_536):
            for item in reader.feed(data[start : start + 65_536]):
                if isinstance(item, LineError):
                    errors.append(item)
                else:
                    imported += 1
        for item in reader.finish():
            assert not isinstance(item, LineError), item
            imported += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(e.line, e.field) for e in errors] == [(2, None)]
    assert f"not closed within {MAX_LINE_BYTES} bytes" in errors[0].message
    assert imported == 2_000
    assert peak < 1_000_000  # the record is capped; the 4 MB are never held


def test_a_record_closed_past_the_limit_is_one_error() -> None:
    big = "y" * 1000
    lines = "\n".join([big] * (MAX_LINE_BYTES // 1000))
    # still open at the last line but one (under the limit); the closing line goes past it
    data = f'external_id,phone,note\na,+33612345678,"{lines}\n{big}"\nb,+33612345679,ok\n'
    items = _read(CsvReader(), data.encode(), 4096)
    assert isinstance(items[0], LineError) and items[0].line == 2
    assert items[0].message == f"record longer than {MAX_LINE_BYTES} bytes"
    assert items[1:] == [Profile("b", "+33612345679", {"note": "ok"}, None)]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [(b"\xff\xfe", "not valid UTF-8"), (b"z" * (MAX_LINE_BYTES + 1), "line longer than")],
)
def test_a_bad_line_inside_an_open_quote_ends_the_record(bad: bytes, problem: str) -> None:
    data = (
        b'external_id,phone,note\na,+33612345678,"open\nb,+33612345679,two\n'
        + bad
        + b"\nc,+33612345670,three\n"
    )
    items = _read(CsvReader(), data, 7)
    assert isinstance(items[0], LineError) and items[0].line == 2
    assert "not closed before line 4" in items[0].message
    assert items[1] == Profile("b", "+33612345679", {"note": "two"}, None)
    assert isinstance(items[2], LineError) and items[2].line == 4 and problem in items[2].message
    assert items[3] == Profile("c", "+33612345670", {"note": "three"}, None)


def test_lines_swallowed_by_a_quote_never_closed_are_read_again() -> None:
    data = b'external_id,phone,note\na,+33612345678,"open\nb,+33612345679,"two ""q"""\n'
    items = _read(CsvReader(), data, 3)
    assert isinstance(items[0], LineError) and items[0].line == 2
    assert "never closed" in items[0].message
    assert items[1:] == [Profile("b", "+33612345679", {"note": 'two "q"'}, None)]
