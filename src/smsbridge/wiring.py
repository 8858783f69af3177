"""Building the object graph from settings (and tearing it down). Only entry points call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from smsbridge.config import Settings
from smsbridge.delivery.gateway import ProviderGateway
from smsbridge.delivery.http import HttpTransport
from smsbridge.delivery.sandbox import SandboxProvider
from smsbridge.errors import ConfigurationError
from smsbridge.services.api_keys import ApiKeyService
from smsbridge.services.credentials import CredentialService
from smsbridge.services.secretbox import SecretBox
from smsbridge.storage.database import Database, create_engine


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    db: Database
    transport: HttpTransport
    gateway: ProviderGateway
    box: SecretBox
    api_keys: ApiKeyService
    credentials: CredentialService

    async def close(self) -> None:
        await self.transport.close()
        await self.db.dispose()


async def build_services(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now
) -> Services:
    if settings.admin_key is None:
        raise ConfigurationError("SMSBRIDGE_ADMIN_KEY is not set")
    box = SecretBox(settings.fernet_keys())
    db = Database(create_engine(settings.database_url))
    transport = HttpTransport.create(allow_private=settings.allow_private_provider_urls)
    gateway = ProviderGateway(transport, SandboxProvider())
    return Services(
        settings=settings,
        db=db,
        transport=transport,
        gateway=gateway,
        box=box,
        api_keys=ApiKeyService(db, settings.admin_key.get_secret_value(), clock),
        credentials=CredentialService(
            db,
            box,
            gateway,
            allow_private_urls=settings.allow_private_provider_urls,
            clock=clock,
        ),
    )
