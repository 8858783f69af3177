"""Report speed on a large campaign, SQLite (and PostgreSQL when reachable).

    python benchmarks/reports.py [--messages 1000000] [--pg URL | --no-pg]

Builds one campaign of N messages directly in SQL (statuses spread over sent / delivered /
undelivered / failed, sent and delivered times over two hours, one click for every 10th
message and a bot click for every 50th), then times through the service layer:
the campaign report, the surface report over the same window, and streaming the CSV.
Baseline in the same run: ``SELECT count(*)`` of the campaign's messages (the cheapest
possible pass over them). Target: the campaign report in under a couple of seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from common import SANDBOX_CREDENTIAL, bench_settings, machine
from sqlalchemy import func, select, text

from smsbridge.container import Services, build_services
from smsbridge.storage.migrate import upgrade_async
from smsbridge.storage.tables import messages

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# Portable SQL (SQLite and PostgreSQL) generating the data from a numbers series.
_SERIES = {
    "sqlite": (
        "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {last})"
    ),
    "postgresql": "WITH seq(n) AS (SELECT generate_series(0, {last}))",
}
_TIME = {
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f000', :start, '+' || ({expr}) || ' seconds')",
    "postgresql": "(CAST(:start AS timestamptz) + ({expr}) * interval '1 second')",
}


def _time(dialect: str, expr: str) -> str:
    return _TIME[dialect].format(expr=expr)


async def build(services: Services, count: int) -> tuple[str, str]:
    """A surface and a campaign of ``count`` messages; returns their ids."""
    credential = await services.credentials.create(SANDBOX_CREDENTIAL)
    surface = await services.surfaces.create(
        {"name": "bench", "credential_id": credential.id, "sender": "Acme"}
    )
    campaign = await services.campaigns.create(
        {"name": "bench", "surface_id": surface.id, "body": "Hi", "audience": {"all": True}}
    )
    dialect = services.db.dialect
    series = _SERIES[dialect].format(last=count - 1)
    status = (
        "CASE WHEN n % 20 = 0 THEN 'failed' WHEN n % 20 = 1 THEN 'undelivered' "
        "WHEN n % 4 = 0 THEN 'sent' ELSE 'delivered' END"
    )
    started = START if dialect == "postgresql" else START.replace(tzinfo=None).isoformat(" ")
    async with services.db.transaction() as conn:
        await conn.execute(
            text(
                f"{series} INSERT INTO messages (id, surface_id, campaign_id, profile_id, "
                "message_type, to_number, from_number, body, segments, encoding, status, "
                "attempts, last_error, provider_message_id, created_at, updated_at, sent_at, "
                "delivered_at) "
                f"SELECT 'msg_' || n, :surface, :campaign, 'p' || n, 'marketing', "
                f"'+3361' || (1000000 + n), 'Acme', 'Hi', 1 + n % 2, 'GSM-7', {status}, 1, "
                "CASE WHEN n % 20 = 0 THEN 'provider refused the request (400)' END, "
                f"'prov-' || n, {_time(dialect, '0')}, {_time(dialect, '0')}, "
                f"CASE WHEN n % 20 = 0 THEN NULL ELSE {_time(dialect, 'n % 7200')} END, "
                f"CASE WHEN n % 20 > 1 AND n % 4 != 0 THEN {_time(dialect, 'n % 7200 + 30')} "
                "END FROM seq"
            ),
            {"surface": surface.id, "campaign": campaign["id"], "start": started},
        )
        await conn.execute(
            text(
                f"{series} INSERT INTO clicks (code, message_id, campaign_id, surface_id, at, "
                "user_agent, is_bot) "
                "SELECT 'c' || n, 'msg_' || n, :campaign, :surface, "
                f"{_time(dialect, 'n % 7200 + 60')}, 'bench', n % 50 = 0 "
                "FROM seq WHERE n % 10 = 0"
            ),
            {"surface": surface.id, "campaign": campaign["id"], "start": started},
        )
        await conn.execute(
            text(
                "UPDATE campaigns SET status = 'completed', launched_at = :start, "
                "completed_at = :end, targeted = :count WHERE id = :campaign"
            ),
            {
                "start": started,
                "end": (START + timedelta(hours=2, minutes=5))
                if dialect == "postgresql"
                else (START + timedelta(hours=2, minutes=5)).replace(tzinfo=None).isoformat(" "),
                "count": count,
                "campaign": campaign["id"],
            },
        )
    if dialect == "postgresql":
        async with services.db.transaction() as conn:
            await conn.execute(text("ANALYZE"))
    return surface.id, campaign["id"]


async def measure(label: str, database_url: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        settings = bench_settings(database_url, Path(state))
        await upgrade_async(database_url)
        services = await build_services(settings)
        try:
            started = time.perf_counter()
            surface_id, campaign_id = await build(services, count)
            print(f"{label}: built {count:,} messages in {time.perf_counter() - started:.1f} s")

            started = time.perf_counter()
            async with services.db.read() as conn:
                query = select(func.count()).where(messages.c.campaign_id == campaign_id)
                counted = (await conn.execute(query)).scalar_one()
            baseline = time.perf_counter() - started
            started = time.perf_counter()
            report = await services.reports.campaign(campaign_id)
            campaign_seconds = time.perf_counter() - started
            if report["targeted"] != count or counted != count:
                raise RuntimeError(f"report counts {report['targeted']} of {count}")
            started = time.perf_counter()
            await services.reports.surface(
                surface_id, start=START - timedelta(minutes=1), end=START + timedelta(hours=3)
            )
            surface_seconds = time.perf_counter() - started
            started = time.perf_counter()
            size = 0
            scope = await services.reports.campaign_scope(campaign_id)
            async for chunk in services.reports.csv_rows(scope):
                size += len(chunk)
            csv_seconds = time.perf_counter() - started
        finally:
            await services.close()
    print(f"  baseline count(*) of the campaign's messages: {baseline:.2f} s")
    print(
        f"  campaign report: {campaign_seconds:.2f} s ({campaign_seconds / baseline:.1f}x the "
        f"baseline); sent {report['sent']:,}, delivered {report['delivered']:,}, clicks "
        f"{report['clicks']:,}, {len(report['timeline'])} {report['bucket']} buckets"
    )
    print(f"  surface report (same messages, 3-hour window): {surface_seconds:.2f} s")
    print(f"  CSV: {count / csv_seconds:,.0f} rows/s ({size / 1e6:.0f} MB in {csv_seconds:.1f} s)")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        await measure("SQLite", f"sqlite+aiosqlite:///{tmp}/reports.db", args.messages)
    if args.no_pg:
        return
    try:
        admin = await asyncpg.connect(args.pg, timeout=3)
    except (OSError, asyncpg.PostgresError):
        print("PostgreSQL not reachable: skipped")
        return
    name = f"smsbridge_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        await measure("PostgreSQL", f"{base}/{name}", args.messages)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
