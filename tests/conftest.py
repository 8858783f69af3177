"""Shared fixtures: real databases (SQLite always, PostgreSQL when present / in CI),
the wired services, an API client running the app's lifespan, and a loopback mock provider.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.storage.migrate import upgrade
from tests.mock_provider import MockProvider

ADMIN_KEY = "test-admin-key-0123456789"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_SERVER = os.environ.get("SMSBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# Tests never assert wall-clock times: Hypothesis's default 200 ms deadline per example is
# one, and a cold first run on a slow CI machine goes over it.
hypothesis_settings.register_profile("smsbridge", deadline=None)
hypothesis_settings.load_profile("smsbridge")


# --- everything the suite logs and answers, for the secret-leak test -------------------------


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


LOG_RECORDER = _Recorder()
RESPONSE_BODIES: list[str] = []

SUITE_SECRETS = (
    # Every secret value the suite's credentials use (tests/integration/*).
    "tok-live-abcdef123456",
    "tok-bearer-9f8e7d",
    "sig-secret-5566",
    "pw-basic-7788",
    "key-apikey-3344",
    "hdr-secret-01-abcd",
    "tok-new-0000wxyz",
    "leak-bearer-q1w2e3r4",
    "leak-basic-z9x8c7",
    "leak-apikey-m5n6b7",
    "leak-header-p0o9i8",
    "cs-oauth-7f6e5d4c3b",  # test_auth_types: OAuth2 client secret
    "hm-secret-a1b2c3d4e5",  # test_auth_types: HMAC secret
)


def assert_no_secrets(bodies: list[str], lines: list[str]) -> None:
    for secret in SUITE_SECRETS:
        for body in bodies:
            assert secret not in body, f"secret {secret[:6]}… leaked in a response"
        for line in lines:
            assert secret not in line, f"secret {secret[:6]}… leaked in a log line"


@pytest.fixture(autouse=True)
def no_secret_leaks() -> Iterator[None]:
    """After every test: none of the suite's secret values is in a response body or header the
    ``client`` fixture received during it, or in a line it logged (whatever the order tests
    run in: each test answers for what it produced)."""
    responses, lines = len(RESPONSE_BODIES), len(LOG_RECORDER.lines)
    yield
    assert_no_secrets(RESPONSE_BODIES[responses:], LOG_RECORDER.lines[lines:])


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(LOG_RECORDER)
    root.setLevel(logging.DEBUG)
    for noisy in ("aiosqlite", "asyncio", "hpack", "httpcore", "multipart"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --- databases -------------------------------------------------------------------------------


def _pg_available() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    import asyncio

    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(PG_SERVER, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_SERVER} ({type(exc).__name__}: {exc})"
    return None


def _admin_sql(*statements: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_SERVER, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A throw-away, migrated PostgreSQL database used as the template of each test's database."""
    problem = _pg_available()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(f"{problem}; PostgreSQL tests skipped (they always run in CI)")
    name = f"smsbridge_tpl_{secrets.token_hex(4)}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    base = PG_SERVER.rsplit("/", 1)[0]
    upgrade(f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}")
    try:
        yield name
    finally:
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh, migrated database for one test, on each dialect."""
    if request.param == "sqlite":
        path = tmp_path / "smsbridge.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template: str = request.getfixturevalue("pg_template")
    name = f"smsbridge_t_{secrets.token_hex(5)}"
    _admin_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    base = PG_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "smsbridge.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


# --- the application -------------------------------------------------------------------------


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=SecretStr(ADMIN_KEY),
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        allow_private_provider_urls=True,
        state_dir=tmp_path / "state",
        public_url="https://sms.example.test",
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = await build_services(settings)
    try:
        yield built
    finally:
        await built.close()


async def _record_response(response: httpx.Response) -> None:
    await response.aread()
    RESPONSE_BODIES.append(response.text)
    RESPONSE_BODIES.append(str(dict(response.headers)))


ClientFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@contextlib.asynccontextmanager
async def _app_client(
    settings: Settings, services: Services, *, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, prebuilt=services)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=base_url,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            event_hooks={"response": [_record_response]},
        ) as http,
    ):
        yield http


@pytest.fixture
def make_client() -> ClientFactory:
    """``make_client(settings, services, base_url=…)``: an async context manager giving an API
    client authenticated with the master key, talking in-process to the app built on those
    services, its lifespan running (for tests that build their own services: another clock,
    other settings, a report poster). Its responses are scanned like ``client``'s."""
    return _app_client


@pytest.fixture
async def client(
    settings: Settings, services: Services, make_client: ClientFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """An API client authenticated with the master key, talking to the app in-process."""
    async with make_client(settings, services) as http:
        yield http


@pytest.fixture
async def mock_provider() -> AsyncIterator[MockProvider]:
    provider = MockProvider()
    await provider.start()
    try:
        yield provider
    finally:
        await provider.stop()


CredentialFactory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_credential(client: httpx.AsyncClient, mock_provider: MockProvider) -> CredentialFactory:
    """Create a credential through the API (pointing at the mock provider unless overridden)."""
    counter = iter(range(1, 10_000))

    async def make(**overrides: Any) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": f"cred-{next(counter)}",
            "provider_name": "Mock",
            "provider_url": f"{mock_provider.url}/sms/send",
            "auth": {"type": "bearer", "token": "tok-live-abcdef123456"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "response": {"message_id_path": "$.id"},
        }
        document.update(overrides)
        response = await client.post("/api/v1/credentials", json=document)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make
