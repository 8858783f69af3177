"""A real ``smsbridge serve`` for benchmarks, and a load client in a process of its own.

What the HTTP benchmarks (ingest, webhooks…) share:

* :class:`ChildProcesses` — every process a benchmark starts, ended when it exits, also on
  Ctrl-C, SIGTERM or an exception (:func:`end_children_on_exit`).
* :func:`scratch_database` — a fresh SQLite file or a fresh PostgreSQL database (created,
  migrated by ``smsbridge migrate``, dropped afterwards).
* :class:`Server` — ``python -m smsbridge serve [--no-worker]`` on a free loopback port, with
  ``SMSBRIDGE_PUBLIC_URL`` set to its real address (the sandbox posts delivery reports there);
  :meth:`Server.settings` gives the same settings to the benchmark's own services, for direct
  database access.
* :func:`create_sandbox_surface` — a credential on the built-in sandbox provider and a surface
  using it, through the public API with the master key.
* :func:`run_load` — an aiohttp client (keep-alive, fixed concurrency) in a separate process,
  so that it does not share an interpreter lock with the benchmark; it runs a warm-up, then a
  measured window, and reports per-request latencies, statuses, errors and the message ids
  it was answered with. The benchmark is told when the window opens and closes (to sample
  the database at those instants).

The load process is this file: ``python serve_harness.py load SPEC.json RESULT.json``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Literal, NoReturn

import aiohttp
import orjson
from cryptography.fernet import Fernet

if TYPE_CHECKING:
    from smsbridge.config import Settings

HERE = Path(__file__).resolve().parent
ADMIN_KEY = "bench-admin-key"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
Kind = Literal["sqlite", "pg"]
DB_NAMES: dict[Kind, str] = {"sqlite": "SQLite", "pg": "PostgreSQL"}
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}


# --- child processes -----------------------------------------------------------------------


class ChildProcesses:
    """The processes a benchmark started; :meth:`end_all` ends those still running."""

    def __init__(self) -> None:
        self._popen: list[subprocess.Popen[bytes]] = []
        self._asyncio: list[asyncio.subprocess.Process] = []

    def add(self, process: subprocess.Popen[bytes] | asyncio.subprocess.Process) -> None:
        if isinstance(process, subprocess.Popen):
            self._popen.append(process)
        else:
            self._asyncio.append(process)

    def end_all(self) -> None:
        running: list[int] = [p.pid for p in self._popen if p.poll() is None]
        running += [p.pid for p in self._asyncio if p.returncode is None]
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self._popen:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for pid in running:  # whatever did not stop in time (asyncio children included)
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                if os.waitpid(pid, os.WNOHANG) == (0, 0):
                    os.kill(pid, signal.SIGKILL)


CHILDREN = ChildProcesses()
"""This process's children (one registry per process: what atexit and signals reach)."""


def end_children_on_exit() -> None:
    """End every registered child at exit; SIGTERM and SIGHUP exit like Ctrl-C does (through
    the ``finally`` blocks, which stop servers and drop scratch databases)."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    atexit.register(CHILDREN.end_all)


def run_script(main: Callable[[], Awaitable[int]]) -> NoReturn:
    """A benchmark's entry point: children ended on exit (and on Ctrl-C, said so), exit code
    from ``main``."""
    end_children_on_exit()
    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        CHILDREN.end_all()
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until ``GET url`` answers 200; fails early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"process exited with {process.returncode} before ready")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready after {timeout:.0f} s")
            await asyncio.sleep(0.05)


async def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (a graceful stop: uvicorn's shutdown, the worker's drain), SIGKILL after
    ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- databases -----------------------------------------------------------------------------


def asyncpg_url(server: str, database: str) -> str:
    """The SQLAlchemy URL of ``database`` on the server of ``server`` (a libpq URL)."""
    base = server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


async def postgres_reachable(server: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(server, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _remove_with_journals(path: Path) -> None:
    for leftover in path.parent.glob(f"{path.name}*"):  # -wal, -shm
        leftover.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def scratch_database(
    kind: Kind, directory: Path, *, pg: str = DEFAULT_PG, name: str = "bench"
) -> AsyncIterator[str]:
    """A fresh, empty database; yields its SQLAlchemy URL. SQLite: a new file in
    ``directory`` (``serve`` migrates it); PostgreSQL: ``smsbridge_bench_<name>_<hex>`` on the
    server of ``pg``, migrated here (``serve`` does not migrate PostgreSQL), dropped after."""
    suffix = secrets.token_hex(3)
    if kind == "sqlite":
        path = directory / f"{name}-{suffix}.db"
        try:
            yield f"sqlite+aiosqlite:///{path}"
        finally:
            _remove_with_journals(path)
        return
    import asyncpg

    database = f"smsbridge_bench_{name}_{suffix}"
    conn = await asyncpg.connect(pg, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    url = asyncpg_url(pg, database)
    try:
        migrate = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smsbridge",
            "migrate",
            env=serve_environment(url, directory),
            stdout=subprocess.DEVNULL,
        )
        CHILDREN.add(migrate)
        if await migrate.wait() != 0:
            raise RuntimeError(f"smsbridge migrate failed on {database}")
        yield url
    finally:
        conn = await asyncpg.connect(pg, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()


# --- the server ----------------------------------------------------------------------------


def serve_environment(database_url: str, state: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any ``SMSBRIDGE_`` setting of the caller's, plus
    ``database_url``, the bench admin key, a new Fernet key and ``settings`` (by lower-case
    setting name: ``public_url="…"``). :meth:`Server.settings` reads the same values back."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSBRIDGE_")}
    env.update(
        SMSBRIDGE_DATABASE_URL=database_url,
        SMSBRIDGE_ADMIN_KEY=ADMIN_KEY,
        SMSBRIDGE_SECRET_KEYS=Fernet.generate_key().decode(),
        SMSBRIDGE_STATE_DIR=str(state),
        SMSBRIDGE_LOG_LEVEL="WARNING",
    )
    env.update({f"SMSBRIDGE_{key.upper()}": value for key, value in settings.items()})
    return env


class Server:
    """``smsbridge serve`` on a free loopback port, as a child process.

    ``async with Server(url, state, worker=False) as server:`` starts it and waits for
    ``/healthz``; leaving the block stops it gracefully (SIGTERM; SIGKILL after 20 s). Its
    output goes to ``state/serve-<port>.log`` (shown when it fails to start)."""

    def __init__(
        self, database_url: str, state: Path, *, worker: bool = True, **settings: str
    ) -> None:
        self.database_url = database_url
        self.worker = worker
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = serve_environment(database_url, state, public_url=self.base_url, **settings)
        self.log = state / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def settings(self) -> Settings:
        """The server's settings, for the benchmark's own ``build_services``."""
        from smsbridge.config import Settings

        names = {k.removeprefix("SMSBRIDGE_").lower(): v for k, v in self.env.items()}
        return Settings.model_validate(
            {k: v for k, v in names.items() if k in Settings.model_fields}
        )

    async def start(self) -> None:
        command = [sys.executable, "-m", "smsbridge", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port)] + ([] if self.worker else ["--no-worker"])
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        CHILDREN.add(self.process)
        try:
            await wait_ready(f"{self.base_url}/healthz", self.process)
        except (RuntimeError, TimeoutError) as exc:
            await self.stop()
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"smsbridge serve did not start: {exc}\n{tail}") from None

    async def stop(self) -> None:
        if self.process is not None:
            await stop_process(self.process)

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


@dataclass(frozen=True)
class SandboxSurface:
    credential_id: str
    surface_id: str
    status_webhook_url: str
    inbound_webhook_url: str


async def create_sandbox_surface(
    base_url: str, name: str, *, message_type: str = "transactional", sender: str = "Acme"
) -> SandboxSurface:
    """A sandbox credential and a surface on it, created through the API (master key)."""
    credential = {
        "name": f"{name}-sandbox",
        "provider_url": "sandbox://default",
        "auth": {"type": "none"},
        "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        "response": {"message_id_path": "$.id"},
    }
    async with aiohttp.ClientSession(base_url, headers=AUTH) as session:
        async with session.post("/api/v1/credentials", json=credential) as response:
            created = await response.json()
            if response.status != 201:
                raise RuntimeError(f"credential not created ({response.status}): {created}")
        surface = {
            "name": name,
            "credential_id": created["id"],
            "sender": sender,
            "message_type": message_type,
        }
        async with session.post("/api/v1/surfaces", json=surface) as response:
            made = await response.json()
            if response.status != 201:
                raise RuntimeError(f"surface not created ({response.status}): {made}")
    return SandboxSurface(
        created["id"], made["id"], made["status_webhook_url"], made["inbound_webhook_url"]
    )


# --- the load client -----------------------------------------------------------------------


def phone(n: int) -> str:
    """A distinct French mobile number for each ``n`` below 10**7, never one ending in
    ``0000`` (the sandbox rejects those) or ``9999`` (never delivered)."""
    digits = f"{n % 10**7:07d}"
    if digits.endswith(("0000", "9999")):
        digits = digits[:-1] + "5"
    return f"+3361{digits}"


@dataclass(frozen=True)
class LoadSpec:
    """What the load process sends: ``body`` with ``{n}`` and ``{phone}`` replaced per request
    (or per item: with ``batch_size``, the body is ``{"<batch_key>": [item, …]}`` of that many
    renderings of ``body``), at a fixed number of keep-alive connections. A warm-up (not
    measured: at least ``warmup`` seconds, and until every connection has had an answer),
    then a window of ``seconds`` or, with ``requests``, until that many requests completed
    in it. ``accept``: where the accepted message ids are in a 2xx answer — ``id`` (the
    answer's ``id``), ``results`` (``results[i].message.id`` of items with status 202) or
    ``none``."""

    url: str
    body: str
    concurrency: int
    seconds: float = 5.0
    warmup: float = 1.0
    requests: int | None = None
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: dict(AUTH))
    accept: Literal["id", "results", "none"] = "id"
    batch_size: int | None = None
    batch_key: str = "messages"
    first_n: int = 0
    timeout: float = 120.0


@dataclass(frozen=True)
class LoadResult:
    window_seconds: float
    window_requests: int
    """Requests that completed inside the window (the rates count these)."""
    window_accepted: int
    """Messages accepted by those requests (one per request, or per batch item)."""
    latencies: list[float]
    """Seconds, of every request that completed inside the window."""
    statuses: dict[str, int]
    """HTTP status (or exception name) of every request, warm-up included."""
    window_errors: int
    """Requests in the window answered with an exception or a status other than 2xx, and batch
    items other than 202."""
    ids: list[str]
    """Every accepted message id, warm-up included (what must be in the database)."""
    requests_sent: int
    window_cpu_seconds: float
    """CPU the load process itself spent inside the window (is the client the limit?)."""

    @property
    def request_rate(self) -> float:
        return self.window_requests / self.window_seconds if self.window_seconds else 0.0

    @property
    def accepted_rate(self) -> float:
        return self.window_accepted / self.window_seconds if self.window_seconds else 0.0

    @property
    def client_cores(self) -> float:
        return self.window_cpu_seconds / self.window_seconds if self.window_seconds else 0.0

    def percentile(self, share: float) -> float:
        """Latency (seconds) below which ``share`` of the window's requests completed."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


Hook = Callable[[], Awaitable[None]]


async def run_load(
    spec: LoadSpec,
    directory: Path,
    *,
    on_window_start: Hook | None = None,
    on_window_end: Hook | None = None,
) -> LoadResult:
    """Run ``spec`` in a separate process; the hooks are awaited as the window opens and
    closes (while the load goes on), e.g. to sample the database."""
    spec_file = directory / f"load-{secrets.token_hex(4)}.json"
    result_file = spec_file.with_suffix(".result.json")
    spec_file.write_bytes(orjson.dumps(asdict(spec)))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "serve_harness.py"),
        "load",
        str(spec_file),
        str(result_file),
        stdout=subprocess.PIPE,
    )
    CHILDREN.add(process)
    assert process.stdout is not None
    try:
        async for line in process.stdout:
            event = line.strip().decode()
            if event == "window-start" and on_window_start is not None:
                await on_window_start()
            elif event == "window-end" and on_window_end is not None:
                await on_window_end()
        if await process.wait() != 0:
            raise RuntimeError(f"the load process failed (exit {process.returncode})")
        data = orjson.loads(result_file.read_bytes())
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        spec_file.unlink(missing_ok=True)
        result_file.unlink(missing_ok=True)
    return LoadResult(**data)


# --- inside the load process ---------------------------------------------------------------


class _Load:
    MAX_WARMUP = 60.0

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.numbers = itertools.count(spec.first_n)
        self.statuses: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.ids: list[str] = []
        self.window_requests = 0
        self.window_accepted = 0
        self.window_errors = 0
        self.sent = 0
        self.answered_connections = 0
        self.began = time.perf_counter()
        self.window_start: float | None = None
        self.window_end: float | None = None
        self.deadline = 0.0
        self.cpu_at_start = 0.0
        self.cpu_at_end = 0.0

    def body(self) -> bytes:
        template = self.spec.body
        if self.spec.batch_size is None:
            n = next(self.numbers)
            return template.replace("{phone}", phone(n)).replace("{n}", str(n)).encode()
        items = []
        for _ in range(self.spec.batch_size):
            n = next(self.numbers)
            items.append(template.replace("{phone}", phone(n)).replace("{n}", str(n)))
        return f'{{"{self.spec.batch_key}":[{",".join(items)}]}}'.encode()

    def accepted(self, status: int, raw: bytes) -> tuple[int, int]:
        """(accepted messages, refused batch items) of one answer; records the ids."""
        if not 200 <= status < 300 or self.spec.accept == "none":
            return (1 if 200 <= status < 300 else 0), 0
        answer = orjson.loads(raw)
        if self.spec.accept == "id":
            self.ids.append(answer["id"])
            return 1, 0
        ok = [item["message"]["id"] for item in answer["results"] if item["status"] == 202]
        self.ids.extend(ok)
        return len(ok), len(answer["results"]) - len(ok)

    def open_window_if_warm(self, now: float) -> None:
        """The warm-up lasts ``warmup`` seconds and until every connection has had an answer:
        with N connections and a server answering R per second, the first answers take N/R
        seconds (the queue filling up), and latencies are only steady after that."""
        warm = now - self.began >= self.spec.warmup
        if (warm and self.answered_connections >= self.spec.concurrency) or (
            now - self.began >= self.MAX_WARMUP
        ):
            self.window_start = now
            self.deadline = now + (self.spec.seconds if self.spec.requests is None else 600)
            self.cpu_at_start = time.process_time()
            print("window-start", flush=True)

    def finished(self, now: float) -> bool:
        if self.window_end is not None:
            return True
        if self.window_start is None:
            return False
        if now >= self.deadline or (
            self.spec.requests is not None and self.window_requests >= self.spec.requests
        ):
            self.window_end = now
            self.cpu_at_end = time.process_time()
            print("window-end", flush=True)
            return True
        return False

    async def connection(self, session: aiohttp.ClientSession) -> None:
        spec = self.spec
        answered = False
        while not self.finished(time.perf_counter()):
            body = self.body()
            self.sent += 1
            started = time.perf_counter()
            try:
                async with session.request(spec.method, spec.url, data=body) as response:
                    raw = await response.read()
                    status = response.status
                outcome = str(status)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                status, raw, outcome = 0, b"", type(exc).__name__
            ended = time.perf_counter()
            self.statuses[outcome] += 1
            accepted, refused = self.accepted(status, raw) if status else (0, 0)
            if not answered:
                answered = True
                self.answered_connections += 1
            if self.window_start is None:
                self.open_window_if_warm(ended)
            elif self.window_end is None:
                # Counted by completion: in a steady state, completions per second inside
                # the window are the throughput, whatever the latency.
                self.latencies.append(ended - started)
                self.window_requests += 1
                self.window_accepted += accepted
                self.window_errors += refused + (0 if 200 <= status < 300 else 1)

    async def run(self) -> LoadResult:
        connector = aiohttp.TCPConnector(limit=self.spec.concurrency, keepalive_timeout=60)
        timeout = aiohttp.ClientTimeout(total=self.spec.timeout)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=self.spec.headers
        ) as session:
            await asyncio.gather(*(self.connection(session) for _ in range(self.spec.concurrency)))
        assert self.window_start is not None
        assert self.window_end is not None
        return LoadResult(
            window_seconds=self.window_end - self.window_start,
            window_requests=self.window_requests,
            window_accepted=self.window_accepted,
            latencies=self.latencies,
            statuses=dict(self.statuses),
            window_errors=self.window_errors,
            ids=self.ids,
            requests_sent=self.sent,
            window_cpu_seconds=self.cpu_at_end - self.cpu_at_start,
        )


def _load_main(spec_file: str, result_file: str) -> None:
    spec = LoadSpec(**json.loads(Path(spec_file).read_text()))

    async def main() -> LoadResult:
        return await _Load(spec).run()

    try:
        import uvloop  # the client's own cost per request, kept low: uvicorn's loop
    except ImportError:
        result = asyncio.run(main())
    else:
        result = uvloop.run(main())
    Path(result_file).write_bytes(orjson.dumps(asdict(result)))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "load":
        _load_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
