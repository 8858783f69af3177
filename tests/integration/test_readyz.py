"""``GET /readyz``: ready on a migrated database (SQLite and PostgreSQL); not ready, with a
reason and nothing about where the database is, when its schema is behind, missing, or the
database does not answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import build_services
from smsbridge.observability.readiness import code_head
from smsbridge.storage.migrate import upgrade_async


async def _readyz(settings: Settings) -> httpx.Response:
    services = await build_services(settings)
    try:
        app = create_app(settings, prebuilt=services)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as http,
        ):
            return await http.get("/readyz")
    finally:
        await services.close()


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=url,
        admin_key=SecretStr("test-admin-key-0123456789"),
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        state_dir=tmp_path / "state",
    )


async def test_ready_when_migrated(client: httpx.AsyncClient) -> None:
    answer = await client.get("/readyz", headers={"Authorization": ""})  # no key needed
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready"}
    assert (await client.get("/healthz", headers={"Authorization": ""})).status_code == 200


async def test_not_ready_when_migrations_are_behind(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade_async(url, "0010")
    assert code_head() != "0010"
    answer = await _readyz(_settings(url, tmp_path))
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 503
    assert "smsbridge migrate" in problem["detail"]
    assert str(tmp_path) not in answer.text and "sqlite" not in answer.text


async def test_not_ready_without_a_schema(tmp_path: Path) -> None:
    answer = await _readyz(_settings(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path))
    assert answer.status_code == 503
    assert "no schema" in answer.json()["detail"]


async def test_not_ready_when_the_database_does_not_answer(tmp_path: Path) -> None:
    # a closed port on loopback: the connection is refused at once
    url = "postgresql+asyncpg://nobody:hunter2-secret@127.0.0.1:9/smsbridge"
    answer = await _readyz(_settings(url, tmp_path))
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the database is unavailable"
    for leak in ("hunter2", "127.0.0.1", "nobody", "asyncpg"):
        assert leak not in answer.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_readyz_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/readyz" in paths and "/metrics" in paths
