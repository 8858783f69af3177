"""Profile import and campaign fan-out at scale, in process and through ``smsbridge serve``,
on SQLite and on PostgreSQL (issue 21).

    python benchmarks/fanout.py [--mode inprocess|serve|both] [--only sqlite|pg] [--pg URL]
                                [--profiles 1000000] [--quick] [--batch 5000] [--untuned]
                                [--json out.json]

Each run gets a fresh database (a new SQLite file, or a new PostgreSQL database on the server
of ``--pg``, migrated by ``smsbridge migrate`` and dropped afterwards) and uses the same
campaign: a marketing surface on the built-in sandbox provider and a personalized body
(``Hi {{ profile.firstName }}, -20% … https://…``) for all the profiles, with ``send_at``
tomorrow, so its messages are written ``scheduled`` and nothing is sent meanwhile.

In-process mode (``inprocess``; today's code path, in a child process of its own so that each
run's peak RSS is its own):

1. N profiles imported through the service layer's streamed NDJSON import
   (``services.profiles.import_stream``; the bytes generated on the fly, as an upload would
   arrive): profiles/s.
2. The campaign created and launched through the services, then its fan-out timed
   (``FanOut.run``, the code the campaign runner uses, batches of ``--batch``): audience read
   in batches, suppressions and duplicates checked, each message rendered and counted in
   segments, messages + outbox entries written with the cursor moved: recipients/s. Before
   it, the process is tuned as ``smsbridge serve`` and ``smsbridge worker`` tune theirs once
   started (``process_tuning.settle()``: startup objects frozen out of the garbage
   collector, 1 ms switch interval); ``--untuned`` skips that.
3. Peak RSS of that process (import and fan-out included), CPU seconds of import and
   fan-out.

Serve mode (``serve``): a real ``smsbridge serve`` (worker and campaign runner in process, on a
free loopback port, ``SMSBRIDGE_LOG_LEVEL=WARNING``), driven over HTTP only:

1. ``POST /api/v1/profiles/import`` with an NDJSON body streamed in chunks, generated on the
   fly (never held whole): profiles/s from the request to its answer.
2. A sandbox credential and a marketing surface (``POST /api/v1/credentials``, ``/surfaces``),
   the campaign (``POST /api/v1/campaigns``), ``POST /api/v1/campaigns/{id}/launch``, then
   ``GET /api/v1/campaigns/{id}`` every 0.2 s until ``fanout_done`` with ``counts.targeted``
   = N: recipients/s from the launch request to the poll that sees it done. The fan-out runs
   with the server's own batch size (5,000; ``--batch`` does not reach it). Also printed: the
   server's CPU seconds during import and fan-out, and what the polls cost (each one counts
   the campaign's messages by status).
3. The server's peak RSS: ``VmHWM`` of its process (``/proc/<pid>/status``), read once the
   fan-out is done.

After every fan-out, both modes, same database:

* verification in plain SQL: the database holds N profiles, and the campaign N messages, N
  distinct numbers (no duplicate ``(campaign_id, to_number)``) and N outbox entries; the
  API/service view says ``fanout_done``, N targeted and none excluded. Any mismatch makes
  the script exit 1 (after the table);
* the baseline: a plain SQL copy of the profiles (``INSERT … SELECT``, no Python per row, one
  transaction) into copies of ``messages`` and ``outbox`` with the same indexes and the
  outbox's foreign key to its message (checked per row, as for the fan-out), writing the
  rows the fan-out wrote per recipient (the same columns; surface, sender, status, send_at,
  segments, encoding and due time read from the fan-out's first message; the body built in
  SQL from the profile's first name), then dropped: what the database itself writes on this
  machine. SQLite: the tables' own ``CREATE TABLE`` and index definitions, renamed;
  PostgreSQL: ``CREATE TABLE … (LIKE … INCLUDING ALL)`` plus the foreign key.

CPU seconds are the application's process (the in-process child, or the server) and, on a
PostgreSQL server running on this machine, every process of that server (from ``/proc``: the
postmaster, its children and the children it reaped; other databases' work included).

Prints progress lines while it runs, then a table per mode (database, profiles, import
profiles/s, fan-out recipients/s, baseline recipients/s, fan-out / baseline, peak RSS, fan-out
CPU seconds of the application + the database) and PASS/MISS against the targets
(a miss is no failure). Targets, for 1,000,000 recipients through ``serve``, on SQLite and on
PostgreSQL: fan-out ≥ 100,000 recipients/s and ≥ 60 % of the in-run baseline; peak RSS
< 300 MB; import through the API ≥ 30,000 profiles/s. The in-process mode is held to the
fan-out rate and peak RSS targets. ``--quick``: 100,000 profiles (a smoke run; the verdicts
are then indicative only). ``--json FILE`` writes every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson
from common import SANDBOX_CREDENTIAL, bench_settings, machine
from serve_harness import (
    ADMIN_KEY,
    CHILDREN,
    DB_NAMES,
    DEFAULT_PG,
    Kind,
    Server,
    cpu_seconds,
    create_sandbox_surface,
    postgres_reachable,
    run_script,
    scratch_database,
)

SCRIPT = Path(__file__).resolve()
Mode = Literal["inprocess", "serve"]
MODE_NAMES: dict[str, str] = {"inprocess": "in process", "serve": "through serve"}

NAMES = ("Ana", "Bruno", "Chloé", "Dev", "Emma", "Farid", "Giulia", "Hugo", "Inès", "Jonas")
BODY_TAIL = ", -20% on spring items today only: https://acme.example/s"
BODY = "Hi {{ profile.firstName }}" + BODY_TAIL
FULL_SIZE = 1_000_000
QUICK_SIZE = 100_000
POLL_SECONDS = 0.2

TARGET_FANOUT = 100_000
TARGET_SHARE_OF_BASELINE = 0.60
TARGET_RSS_MB = 300
TARGET_IMPORT = 30_000


def say(line: str) -> None:
    print(line, flush=True)


async def ndjson(
    count: int, chunk_lines: int = 2000, progress: Callable[[int], None] | None = None
) -> AsyncIterator[bytes]:
    """``count`` profile lines, in chunks as an upload would deliver them; ``progress`` is
    told how many lines were produced after each chunk."""
    for start in range(0, count, chunk_lines):
        end = min(count, start + chunk_lines)
        yield b"".join(
            orjson.dumps(
                {
                    "external_id": f"p{n:08d}",
                    "phone": f"+3361{n:07d}",
                    "attributes": {"firstName": NAMES[n % 10], "tier": "gold" if n % 7 else "std"},
                }
            )
            + b"\n"
            for n in range(start, end)
        )
        if progress is not None:
            progress(end)


class Ticker:
    """Progress lines at most every ``every`` seconds."""

    def __init__(self, label: str, total: int, every: float = 3.0) -> None:
        self.label, self.total, self.every = label, total, every
        self.started = self.last = time.perf_counter()

    def __call__(self, done: int, what: str) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            say(
                f"  {self.label}: {done:,} / {self.total:,} {what} after {now - self.started:.1f} s"
            )


def own_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb_of(pid: int) -> float:
    """``VmHWM`` (peak resident set) of a process, in MB (Linux ``/proc``; NaN elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (state, ppid, …), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def postgres_cpu(postmaster: int | None) -> float:
    """CPU seconds of a local PostgreSQL server so far: the postmaster, its live children
    (backends, WAL writer, checkpointer, autovacuum…) and the children it already reaped.
    NaN when the server's processes cannot be seen (another machine, a container)."""
    if postmaster is None or (own := _stat(postmaster)) is None:
        return float("nan")
    ticks = sum(int(x) for x in own[11:15])  # utime, stime, cutime, cstime
    for entry in os.scandir("/proc"):
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def find_postmaster(dsn: str) -> int | None:
    """The pid of the PostgreSQL server's postmaster, if it runs on this machine."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
    finally:
        await conn.close()
    return _parent_postgres(int(backend))


def _parent_postgres(pid: int) -> int | None:
    fields = _stat(pid)
    if fields is None:
        return None
    parent = int(fields[1])
    with contextlib.suppress(OSError):
        if "postgres" in Path(f"/proc/{parent}/comm").read_text():
            return parent
    return None


def tomorrow() -> datetime:
    return (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)


# --- figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """What the database holds of a campaign after its fan-out."""

    expected: int
    targeted: int
    excluded: int
    fanout_done: bool
    profiles: int
    messages: int
    numbers: int
    outbox: int

    @property
    def ok(self) -> bool:
        counts = {self.profiles, self.targeted, self.messages, self.numbers, self.outbox}
        return self.fanout_done and self.excluded == 0 and counts == {self.expected}

    def describe(self) -> str:
        verdict = "OK" if self.ok else "MISMATCH"
        return (
            f"check {verdict}: {self.profiles:,} profiles, {self.messages:,} messages, "
            f"{self.numbers:,} distinct numbers, {self.outbox:,} outbox entries; "
            f"targeted {self.targeted:,}, excluded {self.excluded:,}, "
            f"fanout_done {self.fanout_done} (expected {self.expected:,})"
        )


@dataclass
class Run:
    mode: Mode
    kind: Kind
    profiles: int
    import_seconds: float = 0.0
    fanout_seconds: float = 0.0
    baseline_seconds: float = 0.0
    peak_rss_mb: float = float("nan")
    rss_after_import_mb: float = float("nan")
    import_cpu_seconds: float = 0.0
    """CPU of the process importing: the benchmark's child (in process) or the server."""
    fanout_cpu_seconds: float = 0.0
    """CPU of the process fanning out (PostgreSQL's own backends not included)."""
    db_import_cpu_seconds: float = float("nan")
    db_fanout_cpu_seconds: float = float("nan")
    """PostgreSQL's own CPU (every process of the local server) during import and fan-out;
    NaN on SQLite (its work is in the application's CPU) or when not measurable."""
    client_import_cpu_seconds: float | None = None
    """Serve mode: CPU the benchmark spent generating and sending the upload."""
    polls: int = 0
    poll_seconds_mean: float = 0.0
    poll_seconds_max: float = 0.0
    check: Check | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{DB_NAMES[self.kind]}, {MODE_NAMES[self.mode]}"

    @property
    def import_rate(self) -> float:
        return self.profiles / self.import_seconds if self.import_seconds else 0.0

    @property
    def fanout_rate(self) -> float:
        return self.profiles / self.fanout_seconds if self.fanout_seconds else 0.0

    @property
    def baseline_rate(self) -> float:
        return self.profiles / self.baseline_seconds if self.baseline_seconds else 0.0

    @property
    def share(self) -> float:
        return self.fanout_rate / self.baseline_rate if self.baseline_rate else 0.0

    def document(self) -> dict[str, Any]:
        return asdict(self) | {
            "label": self.label,
            "import_rate": self.import_rate,
            "fanout_rate": self.fanout_rate,
            "baseline_rate": self.baseline_rate,
            "fanout_share_of_baseline": self.share,
            "check_ok": self.check.ok if self.check else None,
        }


# --- the databases: verification and baseline ----------------------------------------------


def sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@dataclass(frozen=True)
class RowShape:
    """What the fan-out wrote in every row of a campaign besides the per-recipient values
    (stored values, read back as stored: the baseline writes the same)."""

    campaign_id: str
    surface_id: str
    message_type: str
    from_number: str
    segments: int
    encoding: str
    status: str
    send_at: Any
    created_at: Any
    due_at: Any

    def copied(self) -> tuple[Any, ...]:
        """The baseline's bound values, in its statements' order (created_at last)."""
        return (
            self.surface_id,
            self.campaign_id,
            self.message_type,
            self.from_number,
            BODY_TAIL,
            self.segments,
            self.encoding,
            self.status,
            self.send_at,
            self.created_at,
        )


_SHAPE = (
    "SELECT m.surface_id, m.message_type, m.from_number, m.segments, m.encoding, m.status, "
    "m.send_at, m.created_at, o.due_at FROM messages m JOIN outbox o ON o.message_id = m.id "
    "WHERE m.campaign_id = {p} LIMIT 1"
)
_COUNTS = (
    "SELECT count(*), count(DISTINCT to_number), "
    "(SELECT count(*) FROM outbox o JOIN messages m ON m.id = o.message_id "
    "WHERE m.campaign_id = {p}), (SELECT count(*) FROM profiles) "
    "FROM messages WHERE campaign_id = {p}"
)
# The id: 26 characters after ``msg_`` as the fan-out's, in profile order (appended at the
# end of the primary key's index, as the fan-out's time-ordered ids are).
_COPY_ID = "'msg_' || substr(external_id || '00000000000000000000000000', 1, 26)"
_COPY_COLUMNS = (
    "id, surface_id, campaign_id, profile_id, message_type, to_number, from_number, body, "
    "segments, encoding, status, attempts, send_at, created_at, updated_at"
)


def sqlite_inspect(path: str, campaign_id: str) -> tuple[RowShape | None, tuple[int, ...]]:
    """The campaign's row shape and (messages, distinct numbers, outbox entries)."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(_SHAPE.format(p="?"), (campaign_id,)).fetchone()
        counts = conn.execute(_COUNTS.format(p="?"), (campaign_id, campaign_id)).fetchone()
    finally:
        conn.close()
    shape = RowShape(campaign_id, *row) if row is not None else None
    return shape, tuple(int(c) for c in counts)


async def pg_inspect(dsn: str, campaign_id: str) -> tuple[RowShape | None, tuple[int, ...]]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(_SHAPE.format(p="$1"), campaign_id)
        counts = await conn.fetchrow(_COUNTS.format(p="$1"), campaign_id)
    finally:
        await conn.close()
    shape = RowShape(campaign_id, *row) if row is not None else None
    return shape, tuple(int(c) for c in counts)


def sql_copy_baseline(path: str, shape: RowShape) -> float:
    """Seconds of a pure-SQL copy writing the rows fan-out writes per recipient (a message and
    an outbox entry) into copies of those tables (SQLite): the same definitions — primary
    keys, the outbox's foreign key to its message (checked: the server turns foreign keys on
    as this connection does), every index, partial conditions included."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    for table in ("messages", "outbox"):
        (ddl,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        conn.execute(
            ddl.replace('CREATE TABLE "messages"', "CREATE TABLE copy_messages")
            .replace("CREATE TABLE outbox", "CREATE TABLE copy_outbox")
            .replace("REFERENCES messages (id)", "REFERENCES copy_messages (id)")
        )
        indexes = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table,),
        ).fetchall()
        for (sql,) in indexes:  # the same definitions, partial conditions included
            conn.execute(
                sql.replace("INDEX ix_", "INDEX copy_ix_")
                .replace("INDEX uq_", "INDEX copy_uq_")
                .replace(f" ON {table} ", f" ON copy_{table} ")
            )
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute(
        f"INSERT INTO copy_messages ({_COPY_COLUMNS}) SELECT {_COPY_ID}, ?, ?, external_id, ?, "
        "phone, ?, 'Hi ' || json_extract(attributes, '$.firstName') || ?, ?, ?, ?, 0, ?, ?, ? "
        "FROM profiles",
        (*shape.copied(), shape.created_at),  # created_at, then updated_at
    )
    conn.execute(
        "INSERT INTO copy_outbox (message_id, due_at, lease_token) "
        "SELECT id, ?, 0 FROM copy_messages",
        (shape.due_at,),
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    for table in ("copy_outbox", "copy_messages"):
        conn.execute(f"DROP TABLE {table}")
    conn.close()
    return elapsed


async def pg_copy_baseline(dsn: str, shape: RowShape) -> float:
    """Seconds of the same copy on PostgreSQL. ``LIKE … INCLUDING ALL`` copies the columns with
    their defaults, the primary key, the unique and the partial indexes; the foreign key
    (``outbox.message_id`` → ``messages.id``), which ``LIKE`` never copies, is added, so the
    baseline pays its check per outbox row as the fan-out does."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for table in ("messages", "outbox"):
            await conn.execute(f"CREATE TABLE copy_{table} (LIKE {table} INCLUDING ALL)")
            indexes = "SELECT count(*) FROM pg_indexes WHERE tablename = $1"
            original = await conn.fetchval(indexes, table)
            copied = await conn.fetchval(indexes, f"copy_{table}")
            if original != copied:
                raise RuntimeError(f"copy_{table} has {copied} indexes, {table} {original}")
        await conn.execute(
            "ALTER TABLE copy_outbox ADD FOREIGN KEY (message_id) REFERENCES copy_messages (id)"
        )
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute(
                f"INSERT INTO copy_messages ({_COPY_COLUMNS}) SELECT {_COPY_ID}, $1, $2, "
                "external_id, $3, phone, $4, 'Hi ' || (attributes ->> 'firstName') || $5::text, "
                "$6, $7, $8, 0, $9::timestamptz, $10::timestamptz, $10::timestamptz FROM profiles",
                *shape.copied(),
            )
            await conn.execute(
                "INSERT INTO copy_outbox (message_id, due_at, lease_token) "
                "SELECT id, $1::timestamptz, 0 FROM copy_messages",
                shape.due_at,
            )
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE copy_outbox, copy_messages")
    finally:
        await conn.close()
    return elapsed


async def verify_and_baseline(run: Run, url: str, campaign_id: str, view: dict[str, Any]) -> None:
    """Fills ``run.check`` and, when the fan-out wrote its rows, ``run.baseline_seconds``."""
    counts = view.get("counts") or {}
    if run.kind == "sqlite":
        path = sqlite_path(url)
        shape, (messages, numbers, outbox, profiles) = await asyncio.to_thread(
            sqlite_inspect, path, campaign_id
        )
    else:
        shape, (messages, numbers, outbox, profiles) = await pg_inspect(pg_dsn(url), campaign_id)
    run.check = Check(
        expected=run.profiles,
        targeted=int(counts.get("targeted", -1)),
        excluded=int(counts.get("excluded", -1)),
        fanout_done=bool(view.get("fanout_done")),
        profiles=profiles,
        messages=messages,
        numbers=numbers,
        outbox=outbox,
    )
    say(f"  {run.check.describe()}")
    if shape is None:
        run.notes.append("no message written: no baseline")
        return
    say(f"  baseline: plain SQL copy of {run.profiles:,} profiles …")
    if run.kind == "sqlite":
        run.baseline_seconds = await asyncio.to_thread(sql_copy_baseline, path, shape)
    else:
        run.baseline_seconds = await pg_copy_baseline(pg_dsn(url), shape)
    say(f"  baseline: {run.baseline_rate:,.0f} recipients/s ({run.baseline_seconds:.1f} s)")


# --- in process ----------------------------------------------------------------------------


async def inprocess_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Import and fan-out through the services, in this (child) process."""
    from smsbridge import process_tuning
    from smsbridge.container import build_services
    from smsbridge.services.fanout import FanOut
    from smsbridge.storage.migrate import upgrade_async

    url, count, label = spec["url"], spec["profiles"], spec["label"]
    if spec["kind"] == "sqlite":  # scratch PostgreSQL databases come migrated
        await upgrade_async(url)
    services = await build_services(bench_settings(url, Path(spec["state"])))
    try:
        ticker = Ticker(f"{label} import", count)
        postmaster = spec["postmaster"]
        started, cpu, db_cpu = time.perf_counter(), time.process_time(), postgres_cpu(postmaster)
        result = await services.profiles.import_stream(
            ndjson(count, progress=lambda n: ticker(n, "lines read")), "application/x-ndjson"
        )
        import_seconds = time.perf_counter() - started
        import_cpu = time.process_time() - cpu
        db_import_cpu = postgres_cpu(postmaster) - db_cpu
        if result.imported != count:
            raise RuntimeError(f"import failed: {result.imported:,} imported, {result.errors[:3]}")
        rss_after_import = own_peak_rss_mb()
        say(
            f"  {label} import: {count:,} profiles in {import_seconds:.1f} s = "
            f"{count / import_seconds:,.0f} profiles/s (peak RSS so far {rss_after_import:.0f} MB)"
        )
        credential = await services.credentials.create(SANDBOX_CREDENTIAL)
        surface = await services.surfaces.create(
            {
                "name": "bench",
                "credential_id": credential.id,
                "sender": "Acme",
                "message_type": "marketing",
            }
        )
        campaign = await services.campaigns.create(
            {
                "name": "bench",
                "surface_id": surface.id,
                "body": BODY,
                "audience": {"all": True},
                "send_at": tomorrow(),
            }
        )
        await services.campaigns.launch(campaign["id"])
        if not spec["untuned"]:  # as `smsbridge serve` and `smsbridge worker` do once started
            process_tuning.settle()
        ticker = Ticker(f"{label} fan-out", count)
        batches = 0

        def written() -> None:  # after each batch's commit (a counter: no query)
            nonlocal batches
            batches += 1
            ticker(min(count, batches * spec["batch"]), "recipients written")

        fanout = FanOut(
            services.db,
            clock=services.clock,
            personalizer=services.fanout._personalizer,
            batch_size=spec["batch"],
            on_enqueued=written,
        )
        started, cpu, db_cpu = time.perf_counter(), time.process_time(), postgres_cpu(postmaster)
        await fanout.run(campaign["id"])
        fanout_seconds = time.perf_counter() - started
        fanout_cpu = time.process_time() - cpu
        db_fanout_cpu = postgres_cpu(postmaster) - db_cpu
        view = await services.campaigns.get(campaign["id"])
    finally:
        await services.close()
    return {
        "import_seconds": import_seconds,
        "import_cpu_seconds": import_cpu,
        "rss_after_import_mb": rss_after_import,
        "fanout_seconds": fanout_seconds,
        "fanout_cpu_seconds": fanout_cpu,
        "db_import_cpu_seconds": db_import_cpu,
        "db_fanout_cpu_seconds": db_fanout_cpu,
        "peak_rss_mb": own_peak_rss_mb(),
        "campaign_id": campaign["id"],
        "view": orjson.loads(orjson.dumps(view)),
    }


async def run_inprocess(kind: Kind, args: argparse.Namespace, tmp: Path) -> Run:
    run = Run("inprocess", kind, args.profiles)
    say(f"{run.label}: {args.profiles:,} profiles")
    async with scratch_database(kind, tmp, pg=args.pg, name="fanout") as url:
        spec_file = tmp / f"inprocess-{kind}.json"
        result_file = spec_file.with_suffix(".result.json")
        spec = {
            "kind": kind,
            "url": url,
            "state": str(tmp),
            "profiles": args.profiles,
            "batch": args.batch,
            "untuned": args.untuned,
            "label": DB_NAMES[kind],
            "postmaster": await find_postmaster(pg_dsn(url)) if kind == "pg" else None,
            "result": str(result_file),
        }
        spec_file.write_bytes(orjson.dumps(spec))
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), "--inprocess-child", str(spec_file)
        )
        CHILDREN.add(child)
        if await child.wait() != 0:
            raise RuntimeError(f"the in-process run failed (exit {child.returncode})")
        result = orjson.loads(result_file.read_bytes())
        for name in (
            "import_seconds",
            "import_cpu_seconds",
            "rss_after_import_mb",
            "fanout_seconds",
            "fanout_cpu_seconds",
            "db_import_cpu_seconds",
            "db_fanout_cpu_seconds",
            "peak_rss_mb",
        ):
            setattr(
                run, name, float("nan") if result[name] is None else result[name]
            )  # JSON null: NaN
        say(
            f"  {DB_NAMES[kind]} fan-out: {run.profiles:,} recipients in "
            f"{run.fanout_seconds:.1f} s = {run.fanout_rate:,.0f} recipients/s "
            f"(CPU s: {cpu_text(run, 'fanout')}); peak RSS {run.peak_rss_mb:.0f} MB"
        )
        await verify_and_baseline(run, url, result["campaign_id"], result["view"])
    return run


# --- through serve -------------------------------------------------------------------------


async def expect(response: aiohttp.ClientResponse, status: int, what: str) -> dict[str, Any]:
    body = await response.read()
    if response.status != status:
        raise RuntimeError(f"{what}: HTTP {response.status}: {body[:500]!r}")
    answer: dict[str, Any] = orjson.loads(body)
    return answer


async def run_serve(kind: Kind, args: argparse.Namespace, tmp: Path) -> Run:
    run = Run("serve", kind, args.profiles)
    count, label = args.profiles, DB_NAMES[kind]
    say(f"{run.label}: {count:,} profiles")
    async with scratch_database(kind, tmp, pg=args.pg, name="fanout") as url:
        postmaster = await find_postmaster(pg_dsn(url)) if kind == "pg" else None
        server = Server(url, tmp, worker=True)
        await server.start()
        try:
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=600)
            async with aiohttp.ClientSession(
                server.base_url, headers=headers, timeout=timeout
            ) as session:
                campaign_id, view = await serve_flow(run, server, session, postmaster)
            run.peak_rss_mb = peak_rss_mb_of(server.pid)
            say(
                f"  {label} fan-out: {count:,} recipients in {run.fanout_seconds:.1f} s = "
                f"{run.fanout_rate:,.0f} recipients/s (CPU s: {cpu_text(run, 'fanout')}; "
                f"{run.polls} polls, {run.poll_seconds_mean * 1000:.0f} ms mean, "
                f"{run.poll_seconds_max * 1000:.0f} ms max); server peak RSS "
                f"{run.peak_rss_mb:.0f} MB"
            )
        finally:
            await server.stop()
        await verify_and_baseline(run, url, campaign_id, view)
    return run


async def serve_flow(
    run: Run, server: Server, session: aiohttp.ClientSession, postmaster: int | None
) -> tuple[str, dict[str, Any]]:
    """Import, campaign, launch, poll: fills the run's figures; the campaign id and its last
    view."""
    count, label = run.profiles, DB_NAMES[run.kind]
    ticker = Ticker(f"{label} import", count)
    started = time.perf_counter()
    server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
    db_cpu = postgres_cpu(postmaster)
    async with session.post(
        "/api/v1/profiles/import",
        data=ndjson(count, progress=lambda n: ticker(n, "lines sent")),
        headers={"Content-Type": "application/x-ndjson"},
    ) as response:
        answer = await expect(response, 200, "import")
    run.import_seconds = time.perf_counter() - started
    run.import_cpu_seconds = cpu_seconds(server.pid) - server_cpu
    run.client_import_cpu_seconds = time.process_time() - client_cpu
    run.db_import_cpu_seconds = postgres_cpu(postmaster) - db_cpu
    run.rss_after_import_mb = peak_rss_mb_of(server.pid)
    if answer["imported"] != count:
        raise RuntimeError(f"import: {answer['imported']:,} imported, {answer['errors'][:3]}")
    say(
        f"  {label} import: {count:,} profiles in {run.import_seconds:.1f} s = "
        f"{run.import_rate:,.0f} profiles/s (CPU s: {cpu_text(run, 'import')}, "
        f"client {run.client_import_cpu_seconds:.1f}; server peak RSS so far "
        f"{run.rss_after_import_mb:.0f} MB)"
    )

    surface = await create_sandbox_surface(server.base_url, "bench", message_type="marketing")
    campaign = {
        "name": "bench",
        "surface_id": surface.surface_id,
        "body": BODY,
        "audience": {"all": True},
        "send_at": tomorrow().isoformat(),
    }
    async with session.post("/api/v1/campaigns", json=campaign) as response:
        created = await expect(response, 201, "campaign")
    campaign_id: str = created["id"]

    ticker = Ticker(f"{label} fan-out", count)
    latencies: list[float] = []
    deadline = time.monotonic() + max(300.0, count / 1000)
    started = time.perf_counter()
    server_cpu, db_cpu = cpu_seconds(server.pid), postgres_cpu(postmaster)
    async with session.post(f"/api/v1/campaigns/{campaign_id}/launch") as response:
        view = await expect(response, 202, "launch")
    while True:
        counts = view.get("counts") or {}
        targeted = int(counts.get("targeted", 0))
        if view["fanout_done"]:
            break
        ticker(targeted, "targeted")
        if time.monotonic() > deadline:
            raise TimeoutError(f"fan-out not done in time: {counts}")
        await asyncio.sleep(POLL_SECONDS)
        polled = time.perf_counter()
        async with session.get(f"/api/v1/campaigns/{campaign_id}") as response:
            view = await expect(response, 200, "campaign")
        latencies.append(time.perf_counter() - polled)
    run.fanout_seconds = time.perf_counter() - started
    run.fanout_cpu_seconds = cpu_seconds(server.pid) - server_cpu
    run.db_fanout_cpu_seconds = postgres_cpu(postmaster) - db_cpu
    run.polls = len(latencies)
    if latencies:
        run.poll_seconds_mean = sum(latencies) / len(latencies)
        run.poll_seconds_max = max(latencies)
    return campaign_id, view


# --- report --------------------------------------------------------------------------------


def cpu_text(run: Run, phase: Literal["import", "fanout"]) -> str:
    """``app 2.1, PostgreSQL 1.4``: CPU seconds of the application process and the database's."""
    app = run.import_cpu_seconds if phase == "import" else run.fanout_cpu_seconds
    db = run.db_import_cpu_seconds if phase == "import" else run.db_fanout_cpu_seconds
    where = "server" if run.mode == "serve" else "process"
    return f"{where} {app:.1f}" + ("" if math.isnan(db) else f", PostgreSQL {db:.1f}")


def mb(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f} MB"


def table(runs: list[Run]) -> list[str]:
    """One line per run; the last column is the fan-out's CPU seconds: the application's
    process (the benchmark's child in process, the server through serve), plus PostgreSQL's."""
    header = (
        f"{'database':<11}{'profiles':>11}{'import/s':>11}{'fan-out/s':>11}{'baseline/s':>12}"
        f"{'ratio':>7}{'peak RSS':>10}  fan-out CPU s (app + db)"
    )
    lines = [header, "-" * len(header)]
    for r in runs:
        cpu = f"{r.fanout_cpu_seconds:.1f}"
        if not math.isnan(r.db_fanout_cpu_seconds):
            cpu += f" + {r.db_fanout_cpu_seconds:.1f}"
        lines.append(
            f"{DB_NAMES[r.kind]:<11}{r.profiles:>11,}{r.import_rate:>11,.0f}"
            f"{r.fanout_rate:>11,.0f}{r.baseline_rate:>12,.0f}{r.share:>7.0%}"
            f"{mb(r.peak_rss_mb):>10}  {cpu}"
        )
    return lines


def verdicts(runs: list[Run]) -> list[str]:
    lines = []

    def line(ok: bool, text: str) -> None:
        lines.append(f"{'PASS' if ok else 'MISS'}  {text}")

    for r in runs:
        line(
            r.fanout_rate >= TARGET_FANOUT,
            f"{r.label}: fan-out {r.fanout_rate:,.0f} recipients/s (target ≥ {TARGET_FANOUT:,})",
        )
        if r.mode == "serve":
            line(
                r.share >= TARGET_SHARE_OF_BASELINE,
                f"{r.label}: fan-out {r.share:.0%} of the plain-SQL baseline "
                f"{r.baseline_rate:,.0f}/s (target ≥ {TARGET_SHARE_OF_BASELINE:.0%})",
            )
        line(
            r.peak_rss_mb < TARGET_RSS_MB,
            f"{r.label}: peak RSS {mb(r.peak_rss_mb)} (target < {TARGET_RSS_MB} MB)",
        )
        if r.mode == "serve":
            line(
                r.import_rate >= TARGET_IMPORT,
                f"{r.label}: import {r.import_rate:,.0f} profiles/s (target ≥ {TARGET_IMPORT:,})",
            )
    return lines


def report(args: argparse.Namespace, runs: list[Run]) -> list[str]:
    lines: list[str] = []
    for mode in ("inprocess", "serve"):
        of_mode = [r for r in runs if r.mode == mode]
        if of_mode:
            lines += ["", f"{MODE_NAMES[mode]}:", *table(of_mode)]
    lines += ["", *verdicts(runs)]
    if args.profiles != FULL_SIZE:
        lines.append(
            f"(the targets are for {FULL_SIZE:,} recipients; this run had {args.profiles:,}: "
            "indicative only)"
        )
    for r in runs:
        if r.check is not None and not r.check.ok:
            lines.append(f"FAILED  {r.label}: {r.check.describe()}")
        lines += [f"note  {r.label}: {n}" for n in r.notes]
    return lines


def write_json(args: argparse.Namespace, runs: list[Run], lines: list[str]) -> None:
    document = {
        "machine": machine(),
        "settings": {
            "modes": args.modes,
            "databases": args.kinds,
            "profiles": args.profiles,
            "batch": args.batch,
            "untuned": args.untuned,
            "poll_seconds": POLL_SECONDS,
        },
        "targets": {
            "fanout_recipients_per_second": TARGET_FANOUT,
            "fanout_share_of_baseline": TARGET_SHARE_OF_BASELINE,
            "peak_rss_mb": TARGET_RSS_MB,
            "import_profiles_per_second": TARGET_IMPORT,
        },
        "runs": [r.document() for r in runs],
        "report": lines,
    }
    args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print(f"figures written to {args.json}")


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mode", choices=("inprocess", "serve", "both"), default="both", help="default: both"
    )
    parser.add_argument(
        "--only", choices=("sqlite", "pg"), help="one database (default: SQLite and PostgreSQL)"
    )
    parser.add_argument(
        "--pg", default=DEFAULT_PG, help=f"PostgreSQL server (libpq URL; default {DEFAULT_PG})"
    )
    parser.add_argument("--profiles", type=int, help=f"default {FULL_SIZE:,}")
    parser.add_argument(
        "--quick", action="store_true", help=f"a smoke run: {QUICK_SIZE:,} profiles"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=5000,
        help="fan-out batch size of the in-process mode (the server's default; serve uses its own)",
    )
    parser.add_argument(
        "--untuned",
        action="store_true",
        help="in process: skip process_tuning.settle() (collector and switch interval as "
        "Python sets them)",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--inprocess-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profiles is None:
        args.profiles = QUICK_SIZE if args.quick else FULL_SIZE
    if args.profiles < 1:
        parser.error("--profiles must be at least 1")
    args.modes = ["inprocess", "serve"] if args.mode == "both" else [args.mode]
    args.kinds = [args.only] if args.only else ["sqlite", "pg"]
    return args


async def main(args: argparse.Namespace) -> int:
    print(machine())
    if "pg" in args.kinds and not await postgres_reachable(args.pg):
        print(f"PostgreSQL not reachable at {args.pg}: PostgreSQL runs skipped")
        args.kinds = [k for k in args.kinds if k != "pg"]
        if not args.kinds:
            return 2
    print(
        f"{args.profiles:,} profiles; modes: {', '.join(MODE_NAMES[m] for m in args.modes)}; "
        f"databases: {', '.join(DB_NAMES[k] for k in args.kinds)}"
    )
    started = time.monotonic()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="smsbridge-fanout-") as tmp:
        for mode in args.modes:
            for kind in args.kinds:
                if mode == "inprocess":
                    runs.append(await run_inprocess(kind, args, Path(tmp)))
                else:
                    runs.append(await run_serve(kind, args, Path(tmp)))
    lines = report(args, runs)
    print("\n".join(lines))
    print(f"\n({time.monotonic() - started:,.0f} s in all)")
    if args.json:
        write_json(args, runs, lines)
    return 0 if all(r.check is not None and r.check.ok for r in runs) else 1


def child_main(spec_file: Path) -> None:
    spec = orjson.loads(spec_file.read_bytes())
    result = asyncio.run(inprocess_child(spec))
    Path(spec["result"]).write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.inprocess_child:
        child_main(arguments.inprocess_child)
        sys.exit(0)
    run_script(lambda: main(arguments))
