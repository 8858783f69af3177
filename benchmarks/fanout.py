"""Profile import and campaign fan-out at scale, on SQLite.

    python benchmarks/fanout.py [--profiles 1000000] [--batch 5000] [--untuned]

1. Imports N profiles through the service layer's streamed NDJSON import (the bytes are
   generated on the fly, as an upload would arrive) and prints profiles/s.
2. Creates a personalized campaign for all of them and times its fan-out (FanOut.run, the
   code the campaign runner uses): audience read in batches, suppressions and duplicates
   checked, each message rendered and counted in segments, messages + outbox entries +
   exclusions written, cursor moved: recipients/s. Before it, the process is tuned as
   `smsbridge serve` and `smsbridge worker` tune theirs once started (process_tuning.settle:
   startup objects frozen out of the garbage collector, 1 ms switch interval); --untuned
   skips that.
3. Baseline, same run, same database: a plain SQL copy of the profiles into tables shaped
   like the rows fan-out writes per recipient (``INSERT … SELECT``, no Python per row) — what
   SQLite itself can write on this machine.
4. Peak RSS of the process (import and fan-out included).

Targets: fan-out ≥ 100,000 recipients/s; peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from common import SANDBOX_CREDENTIAL, bench_settings, machine

from smsbridge import process_tuning
from smsbridge.container import build_services
from smsbridge.services.fanout import FanOut
from smsbridge.storage.migrate import upgrade_async

NAMES = ("Ana", "Bruno", "Chloé", "Dev", "Emma", "Farid", "Giulia", "Hugo", "Inès", "Jonas")
BODY = "Hi {{ profile.firstName }}, -20% on spring items today only: https://acme.example/s"


async def ndjson(count: int, chunk_lines: int = 2000) -> AsyncIterator[bytes]:
    """``count`` profile lines, in chunks as an upload would deliver them."""
    for start in range(0, count, chunk_lines):
        yield b"".join(
            orjson.dumps(
                {
                    "external_id": f"p{n:08d}",
                    "phone": f"+3361{n:07d}",
                    "attributes": {"firstName": NAMES[n % 10], "tier": "gold" if n % 7 else "std"},
                }
            )
            + b"\n"
            for n in range(start, min(count, start + chunk_lines))
        )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sql_copy_baseline(path: str) -> float:
    """Recipients/s of a pure-SQL copy writing the rows fan-out writes per recipient (a message
    and an outbox entry) into copies of those tables with the same indexes."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for table, key in (("messages", "id"), ("outbox", "message_id")):
        conn.execute(f"CREATE TABLE copy_{table} AS SELECT * FROM {table} WHERE 0")
        conn.execute(f"CREATE UNIQUE INDEX copy_{table}_pk ON copy_{table}({key})")
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
    (count,) = conn.execute("SELECT count(*) FROM profiles").fetchone()
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO copy_messages (id, surface_id, campaign_id, profile_id, message_type, "
        "to_number, from_number, body, segments, encoding, status, attempts, created_at, "
        "updated_at) SELECT 'msg_' || external_id, 'srf', 'cmp', external_id, 'marketing', "
        "phone, 'Acme', 'Hi ' || json_extract(attributes, '$.firstName'), 1, 'GSM-7', "
        "'queued', 0, '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000' FROM profiles"
    )
    conn.execute(
        "INSERT INTO copy_outbox (message_id, due_at, lease_token) "
        "SELECT id, created_at, 0 FROM copy_messages"
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    for table in ("copy_messages", "copy_outbox"):
        conn.execute(f"DROP TABLE {table}")
    conn.close()
    return float(count) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument(
        "--batch", type=int, default=5000, help="fan-out batch size (the server's default)"
    )
    parser.add_argument(
        "--untuned",
        action="store_true",
        help="skip process_tuning.settle() (collector and switch interval as Python sets them)",
    )
    args = parser.parse_args()
    count = args.profiles
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/fanout.db"
        url = f"sqlite+aiosqlite:///{path}"
        settings = bench_settings(url, Path(tmp))
        await upgrade_async(url)
        services = await build_services(settings)
        try:
            started = time.perf_counter()
            result = await services.profiles.import_stream(ndjson(count), "application/x-ndjson")
            import_seconds = time.perf_counter() - started
            if result.imported != count:
                raise RuntimeError(f"import failed: {result.errors[:3]}")
            print(
                f"import: {count:,} profiles in {import_seconds:.1f} s = "
                f"{count / import_seconds:,.0f} profiles/s (peak RSS so far {peak_rss_mb():.0f} MB)"
            )

            credential = await services.credentials.create(SANDBOX_CREDENTIAL)
            surface = await services.surfaces.create(
                {"name": "bench", "credential_id": credential.id, "sender": "Acme"}
            )
            campaign = await services.campaigns.create(
                {"name": "bench", "surface_id": surface.id, "body": BODY, "audience": {"all": True}}
            )
            await services.campaigns.launch(campaign["id"])
            if not args.untuned:  # as `smsbridge serve` and `smsbridge worker` do once started
                process_tuning.settle()
            fanout = FanOut(
                services.db,
                clock=services.clock,
                personalizer=services.fanout._personalizer,
                batch_size=args.batch,
            )
            started = time.perf_counter()
            await fanout.run(campaign["id"])
            fanout_seconds = time.perf_counter() - started
            view = await services.campaigns.get(campaign["id"])
            if not view["fanout_done"] or view["counts"]["targeted"] != count:
                raise RuntimeError(f"fan-out incomplete: {view['counts']}")
            rate = count / fanout_seconds
            print(
                f"fan-out: {count:,} recipients in {fanout_seconds:.1f} s = {rate:,.0f} "
                f"recipients/s (target 100,000)"
            )
        finally:
            await services.close()
        baseline = sql_copy_baseline(path)
        print(f"baseline, plain SQL copy of the same rows: {baseline:,.0f} recipients/s")
        print(f"fan-out / baseline: {rate / baseline:.0%}")
        print(f"peak RSS: {peak_rss_mb():.0f} MB (target < 300 MB)")


if __name__ == "__main__":
    asyncio.run(main())
