"""Secrets are encrypted at rest and survive a key rotation after the old key is dropped."""

from __future__ import annotations

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.errors import SecretsUnavailable
from smsbridge.storage.tables import credentials
from tests.conftest import CredentialFactory

TOKEN = "tok-live-abcdef123456"


async def _stored_secrets(services: Services) -> list[str]:
    async with services.db.read() as conn:
        return [r.secrets for r in await conn.execute(select(credentials.c.secrets))]


async def test_secrets_are_not_stored_in_clear(
    make_credential: CredentialFactory, services: Services
) -> None:
    await make_credential()
    async with services.db.read() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(select(credentials))]
    assert TOKEN not in repr(rows)


async def test_rotate_then_drop_the_old_key(
    make_credential: CredentialFactory, services: Services, settings: Settings
) -> None:
    made = [await make_credential(), await make_credential()]
    old_key = settings.fernet_keys()[0]
    new_key = Fernet.generate_key().decode()
    before = await _stored_secrets(services)

    rotated_settings = settings.model_copy(
        update={"secret_keys": SecretStr(f"{new_key},{old_key}")}
    )
    rotating = await build_services(rotated_settings)
    try:
        assert await rotating.credentials.rotate_secrets() == 2
        assert await _stored_secrets(rotating) != before
    finally:
        await rotating.close()

    only_new = await build_services(settings.model_copy(update={"secret_keys": SecretStr(new_key)}))
    try:
        for cred in made:
            loaded = await only_new.credentials.load(cred["id"])
            assert loaded.auth.token == TOKEN
    finally:
        await only_new.close()

    only_old_again = await build_services(
        settings.model_copy(update={"secret_keys": SecretStr(Fernet.generate_key().decode())})
    )
    try:
        try:
            await only_old_again.credentials.load(made[0]["id"])
        except SecretsUnavailable:
            pass
        else:
            raise AssertionError("an unrelated key must not decrypt the secrets")
    finally:
        await only_old_again.close()
