"""Dispatch throughput: smsbridge end to end against the raw aiohttp ceiling, same run.

    python benchmarks/dispatch.py [--messages 20000] [--concurrency 64] [--pg URL]

1. Starts ``fast_provider.py`` in a separate process (a raw asyncio HTTP server).
2. Measures the ceiling: plain aiohttp POSTs of the same payload at the same concurrency.
3. Measures smsbridge: N messages enqueued through the service layer (timed apart), all
   falling due at one instant; then workers run until every message is ``sent``. Runs on
   SQLite with one worker, and on PostgreSQL with one and two worker processes when
   PostgreSQL is reachable (``--pg``, default ``postgresql://postgres@127.0.0.1:5432/postgres``;
   a throw-away database is created and dropped).

Prints messages/s and the ratio to the ceiling; the target is SQLite, one worker ≥ 50 %.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import orjson
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, select

from smsbridge.config import Settings
from smsbridge.services.messages import SendRequest
from smsbridge.storage.migrate import upgrade_async
from smsbridge.storage.tables import messages, outbox
from smsbridge.wiring import Services, build_services

HERE = Path(__file__).parent
BODY = "Hello Ana, your order 12345 has shipped. Track it: https://acme.example/t/abc"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_provider() -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "fast_provider.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("fast provider did not start")
    return process, f"http://127.0.0.1:{port}/sms"


async def raw_ceiling(url: str, count: int, concurrency: int) -> float:
    payload = orjson.dumps(
        {"to": "+33612345678", "from": "Acme", "text": BODY, "ref": "msg_" + "X" * 26}
    )
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-token-123"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(count))

        async def one() -> None:
            for _ in queue:
                async with session.post(url, data=payload, headers=headers) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def settings_for(database_url: str, state: Path) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=SecretStr("bench-admin-key"),
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        allow_private_provider_urls=True,
        state_dir=state,
        log_level="WARNING",
    )


async def prepare(
    services: Services, url: str, count: int, due_in: float
) -> tuple[float, datetime]:
    """Create credential + surface, enqueue ``count`` messages due together; returns enqueue/s."""
    credential = await services.credentials.create(
        {
            "name": "bench",
            "provider_url": url,
            "auth": {"type": "bearer", "token": "bench-token-123"},
            "payload": {
                "to": "{{toNumber}}",
                "from": "{{fromNumber}}",
                "text": "{{message}}",
                "ref": "{{messageId}}",
            },
            "response": {"message_id_path": "$.id"},
        }
    )
    surface = await services.surfaces.create(
        {"name": "bench", "credential_id": credential.id, "sender": "Acme"}
    )
    # Far enough ahead that enqueueing finishes first; then rewritten to one due instant.
    send_at = datetime.now(UTC) + timedelta(hours=1)
    started = time.perf_counter()
    for start in range(0, count, 1000):
        batch = [
            SendRequest(surface.id, f"+3361{n:07d}", BODY, send_at=send_at)
            for n in range(start, min(count, start + 1000))
        ]
        await services.messages.enqueue_many(batch)
    enqueue_rate = count / (time.perf_counter() - started)
    due = datetime.now(UTC) + timedelta(seconds=due_in)
    async with services.db.transaction() as conn:
        await conn.execute(outbox.update().values(due_at=due))
    return enqueue_rate, due


async def sent_count(services: Services) -> int:
    async with services.db.read() as conn:
        query = select(func.count()).select_from(messages).where(messages.c.status == "sent")
        return int((await conn.execute(query)).scalar_one())


async def outbox_size(services: Services) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbox))).scalar_one())


async def wait_all_sent(services: Services, count: int, due: datetime, limit: float = 600) -> float:
    """Seconds from the due instant until every message is sent.

    Polls the size of the outbox (which shrinks as messages finish), not the message table,
    so that watching costs the database little; then checks every message was sent.
    """
    deadline = time.monotonic() + limit
    while await outbox_size(services):
        if time.monotonic() > deadline:
            raise TimeoutError("messages still in the outbox")
        await asyncio.sleep(0.1)
    elapsed = (datetime.now(UTC) - due).total_seconds()
    if (done := await sent_count(services)) != count:
        raise RuntimeError(f"only {done}/{count} messages were sent")
    return elapsed


async def run_in_process(
    database_url: str, url: str, count: int, concurrency: int
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as state:
        settings = settings_for(database_url, Path(state))
        await upgrade_async(database_url)
        services = await build_services(settings)
        try:
            enqueue_rate, due = await prepare(services, url, count, due_in=2.0)
            worker = services.new_worker(
                concurrency=concurrency, batch_size=500, max_in_flight=2000
            )
            task = asyncio.create_task(worker.run())
            elapsed = await wait_all_sent(services, count, due)
            worker.stop()
            await task
        finally:
            await services.close()
    return enqueue_rate, count / elapsed


async def run_processes(
    database_url: str, url: str, count: int, concurrency: int, workers: int
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as state:
        settings = settings_for(database_url, Path(state))
        await upgrade_async(database_url)
        services = await build_services(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSBRIDGE_")}
        assert settings.secret_keys is not None
        env.update(
            SMSBRIDGE_DATABASE_URL=database_url,
            SMSBRIDGE_SECRET_KEYS=settings.secret_keys.get_secret_value(),
            SMSBRIDGE_ADMIN_KEY="bench-admin-key",
            SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS="true",
            SMSBRIDGE_STATE_DIR=state,
            SMSBRIDGE_LOG_LEVEL="WARNING",
            SMSBRIDGE_WORKER_BATCH_SIZE="500",
            SMSBRIDGE_WORKER_POLL_INTERVAL="0.05",
        )
        try:
            enqueue_rate, due = await prepare(services, url, count, due_in=5.0)
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "smsbridge",
                        "worker",
                        "--concurrency",
                        str(concurrency),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
                for _ in range(workers)
            ]
            try:
                elapsed = await wait_all_sent(services, count, due)
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(timeout=30)
        finally:
            await services.close()
    return enqueue_rate, count / elapsed


async def pg_database(server: str) -> str | None:
    try:
        conn = await asyncpg.connect(server, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    name = f"smsbridge_bench_{secrets.token_hex(4)}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name


async def drop_pg(server: str, name: str) -> None:
    conn = await asyncpg.connect(server, timeout=3)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


Row = tuple[str, float, float, float]  # label, msg/s, share of the ceiling, enqueue msg/s


def report(rows: list[Row], label: str, rate: float, ceiling: float, enqueue: float) -> float:
    """Print and keep one run, compared with ``ceiling``; returns its share of the ceiling."""
    print(
        f"{label}: {rate:,.0f} msg/s ({rate / ceiling:.0%} of ceiling {ceiling:,.0f}); "
        f"enqueue {enqueue:,.0f} msg/s"
    )
    rows.append((label, rate, rate / ceiling, enqueue))
    return rate / ceiling


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL runs")
    parser.add_argument("--repeat", type=int, default=3, help="SQLite runs of each kind")
    args = parser.parse_args()
    count, concurrency = args.messages, args.concurrency

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"messages: {count}, concurrency: {concurrency}\n")
    provider, url = start_provider()
    rows: list[Row] = []
    try:
        await raw_ceiling(url, 2000, concurrency)  # warm-up
        ceiling = await raw_ceiling(url, count, concurrency)
        ceilings = [ceiling]
        print(f"raw aiohttp ceiling: {ceiling:,.0f} req/s")

        # The machine's speed drifts: every smsbridge run is compared with the mean of the
        # ceilings measured right before and right after it, and the SQLite runs repeat.
        in_process: list[float] = []
        separate: list[float] = []
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeat):
                sqlite_url = f"sqlite+aiosqlite:///{tmp}/bench-{repeat}.db"
                enqueue, rate = await run_in_process(sqlite_url, url, count, concurrency)
                after = await raw_ceiling(url, count, concurrency)
                label = f"SQLite, 1 worker (in-process) #{repeat + 1}"
                in_process.append(report(rows, label, rate, (ceiling + after) / 2, enqueue))
                ceilings.append(after)
                ceiling = after
                enqueue, rate = await run_processes(
                    f"sqlite+aiosqlite:///{tmp}/bench-process-{repeat}.db",
                    url,
                    count,
                    concurrency,
                    1,
                )
                after = await raw_ceiling(url, count, concurrency)
                label = f"SQLite, 1 worker process #{repeat + 1}"
                separate.append(report(rows, label, rate, (ceiling + after) / 2, enqueue))
                ceilings.append(after)
                ceiling = after
        print(
            f"SQLite, 1 worker, share of the ceiling over {args.repeat} runs: in-process median "
            f"{statistics.median(in_process):.0%} ({', '.join(f'{r:.0%}' for r in in_process)}); "
            f"worker process median {statistics.median(separate):.0%} "
            f"({', '.join(f'{r:.0%}' for r in separate)})"
        )
        if not args.no_pg and (name := await pg_database(args.pg)):
            base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            try:
                pg_rates = []
                for workers in (1, 2):
                    db = await pg_database(args.pg)
                    assert db is not None
                    try:
                        enqueue, rate = await run_processes(
                            f"{base}/{db}", url, count, concurrency, workers
                        )
                    finally:
                        await drop_pg(args.pg, db)
                    label = f"PostgreSQL, {workers} worker process{'es' if workers > 1 else ''}"
                    after = await raw_ceiling(url, count, concurrency)
                    report(rows, label, rate, (ceilings[-1] + after) / 2, enqueue)
                    ceilings.append(after)
                    pg_rates.append(rate)
                print(f"PostgreSQL, 2 workers / 1 worker: {pg_rates[1] / pg_rates[0]:.2f}x")
            finally:
                await drop_pg(args.pg, name)
        elif not args.no_pg:
            print("PostgreSQL not reachable: PostgreSQL runs skipped")
    finally:
        provider.terminate()
        provider.wait()

    print("\n| run | msg/s | of ceiling (measured around it) | enqueue msg/s |")
    print("|---|---:|---:|---:|")
    mean = statistics.mean(ceilings)
    print(f"| raw aiohttp ceiling (mean of {len(ceilings)}) | {mean:,.0f} | - | - |")
    for label, rate, share, enqueue in rows:
        print(f"| {label} | {rate:,.0f} | {share:.0%} | {enqueue:,.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
