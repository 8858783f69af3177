"""Real ``smsbridge worker`` processes on a test's database, and the helpers the multi-process
and fault tests share: set-up, bulk enqueue, waiting until nothing is pending."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from smsbridge.config import Settings
from smsbridge.container import Services
from smsbridge.services.messages import SendRequest
from smsbridge.storage.tables import messages
from tests.mock_provider import MockProvider, credential_document

PENDING = ("scheduled", "queued", "sending")


def worker_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    assert settings.secret_keys is not None
    assert settings.admin_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSBRIDGE_")}
    env.update(
        SMSBRIDGE_DATABASE_URL=settings.database_url,
        SMSBRIDGE_SECRET_KEYS=settings.secret_keys.get_secret_value(),
        SMSBRIDGE_ADMIN_KEY=settings.admin_key.get_secret_value(),
        SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS="true",
        SMSBRIDGE_PUBLIC_URL=settings.public_url,
        SMSBRIDGE_STATE_DIR=str(tmp_path / "state"),
        SMSBRIDGE_WORKER_LEASE_SECONDS="5",
        SMSBRIDGE_WORKER_POLL_INTERVAL="0.05",
        SMSBRIDGE_LOG_LEVEL="WARNING",
    )
    return env


class WorkerProcesses:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self._env = env
        self._cwd = cwd
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, concurrency: int = 32) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smsbridge",
            "worker",
            "--concurrency",
            str(concurrency),
            env=self._env,
            cwd=self._cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    async def start_server(self, *, keep_stdout: bool = False, with_worker: bool = False) -> str:
        """An API process (``serve --no-worker``) on a free loopback port; its base URL.
        ``keep_stdout``: its standard output (uvicorn's access log) is piped, to be read;
        ``with_worker``: ``serve`` as ``make run`` starts it, with its in-process worker."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smsbridge",
            "serve",
            *([] if with_worker else ["--no-worker"]),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=self._env,
            cwd=self._cwd,
            stdout=asyncio.subprocess.PIPE if keep_stdout else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        return base
                if proc.returncode is not None:
                    assert proc.stderr is not None
                    pytest.fail(f"serve exited: {(await proc.stderr.read()).decode()[-2000:]}")
                await asyncio.sleep(0.1)
        pytest.fail(f"serve did not answer on {base}")

    async def stop_all(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def processes(settings: Settings, tmp_path: Path) -> AsyncIterator[WorkerProcesses]:
    group = WorkerProcesses(worker_env(settings, tmp_path), tmp_path)
    try:
        yield group
    finally:
        await group.stop_all()


async def setup_surface(
    services: Services, provider: MockProvider, name: str, **extra: object
) -> str:
    credential = await services.credentials.create(
        credential_document(name, f"{provider.url}/{name}", token="tok-proc-778899", **extra)
    )
    surface = await services.surfaces.create(
        {"name": name, "credential_id": credential.id, "sender": "Acme"}
    )
    return surface.id


async def enqueue(services: Services, surface_id: str, count: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 500):
        batch = [
            SendRequest(surface_id, f"+3361{n:07d}", f"message {n}")
            for n in range(start, min(count, start + 500))
        ]
        ids.extend(await services.messages.enqueue_many(batch))
    return ids


async def pending_count(services: Services) -> int:
    async with services.db.read() as conn:
        query = select(func.count()).select_from(messages).where(messages.c.status.in_(PENDING))
        return int((await conn.execute(query)).scalar_one())


async def statuses(services: Services) -> collections.Counter[str]:
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(messages.c.status, func.count()).group_by(messages.c.status)
        )
        return collections.Counter({r[0]: r[1] for r in rows})


async def wait_until_done(services: Services, timeout: float, processes: WorkerProcesses) -> None:
    deadline = time.monotonic() + timeout
    while await pending_count(services):
        for proc in processes.procs:
            if proc.returncode not in (None, -signal.SIGKILL):
                assert proc.stderr is not None
                error = await proc.stderr.read()
                pytest.fail(f"worker exited with {proc.returncode}: {error.decode()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"messages still pending after {timeout}s: {await statuses(services)}")
        await asyncio.sleep(0.2)


def requests_per_message(provider: MockProvider) -> collections.Counter[str]:
    return collections.Counter(json.loads(r.body)["ref"] for r in provider.requests)
