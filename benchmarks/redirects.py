"""Short-link redirects per second through a real ``smsbridge serve`` process (SQLite).

    python benchmarks/redirects.py [--requests 5000] [--concurrency 32]

Creates messages with tracked links, starts ``smsbridge serve --no-worker`` on a free loopback
port, then measures with an aiohttp client at the given concurrency:

* baseline: ``GET /l/-`` — the same route, answered 404 before any database work (what the
  HTTP server and framework cost per request);
* ``GET /l/{code}``: one primary-key lookup plus one click row written, answered with 302.

Prints requests/s for both, the ratio, and checks that every redirect was recorded as a click.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from common import SANDBOX_CREDENTIAL, bench_settings, free_port, machine
from sqlalchemy import func, select

from smsbridge.container import build_services
from smsbridge.services.messages import SendRequest
from smsbridge.storage.migrate import upgrade_async
from smsbridge.storage.tables import clicks, links


async def hammer(urls: list[str], total: int, concurrency: int, expect: int) -> float:
    cycle = itertools.cycle(urls)
    remaining = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            for _ in remaining:
                async with session.get(next(cycle), allow_redirects=False) as response:
                    await response.read()
                    if response.status != expect:
                        raise RuntimeError(f"HTTP {response.status} instead of {expect}")

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/links.db"
        settings = bench_settings(url, Path(tmp))
        keys = settings.secret_keys.get_secret_value() if settings.secret_keys else ""
        await upgrade_async(url)
        services = await build_services(settings)
        try:
            credential = await services.credentials.create(SANDBOX_CREDENTIAL)
            surface = await services.surfaces.create(
                {
                    "name": "bench",
                    "credential_id": credential.id,
                    "sender": "Acme",
                    "link_tracking": {"enabled": True},
                }
            )
            await services.messages.enqueue_many(
                [
                    SendRequest(surface.id, f"+3361{n:07d}", f"Sale https://acme.example/s/{n}")
                    for n in range(2000)
                ]
            )
            async with services.db.read() as conn:
                codes = [r[0] for r in await conn.execute(select(links.c.code))]
        finally:
            await services.close()

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSBRIDGE_")}
        env.update(
            SMSBRIDGE_DATABASE_URL=url,
            SMSBRIDGE_SECRET_KEYS=keys,
            SMSBRIDGE_ADMIN_KEY="bench-admin-key",
            SMSBRIDGE_STATE_DIR=tmp,
            SMSBRIDGE_LOG_LEVEL="WARNING",
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "smsbridge", "serve", "--no-worker", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz"):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            await hammer([f"{base}/l/-"], 500, args.concurrency, 404)  # warm-up
            floor = await hammer([f"{base}/l/-"], args.requests, args.concurrency, 404)
            targets = [f"{base}/l/{code}" for code in codes]
            redirects = await hammer(targets, args.requests, args.concurrency, 302)
        finally:
            server.terminate()
            server.wait(timeout=30)

        services = await build_services(settings)
        try:
            async with services.db.read() as conn:
                recorded = (
                    await conn.execute(select(func.count()).select_from(clicks))
                ).scalar_one()
        finally:
            await services.close()
    print(
        f"baseline GET /l/- (404, no database): {floor:,.0f} req/s (concurrency {args.concurrency})"
    )
    print(f"GET /l/{{code}} → 302 with the click recorded: {redirects:,.0f} redirects/s")
    print(f"redirects / baseline: {redirects / floor:.0%}")
    print(f"clicks recorded: {recorded:,} of {args.requests:,} redirects")


if __name__ == "__main__":
    asyncio.run(main())
