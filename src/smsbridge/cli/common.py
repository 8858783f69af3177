"""What every ``smsbridge`` command shares: consoles, settings, running with the services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from smsbridge.config import GeneratedSecrets, Settings, ensure_local_secrets
from smsbridge.container import Services, build_services
from smsbridge.errors import InvalidInput, SmsbridgeError
from smsbridge.storage.database import migrates_itself

T = TypeVar("T")

out = Console()
err = Console(stderr=True)


def load_settings() -> tuple[Settings, GeneratedSecrets]:
    try:
        return ensure_local_secrets(Settings())
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/] cannot load settings: {exc}")
        raise typer.Exit(2) from None


def fail(exc: SmsbridgeError) -> typer.Exit:
    err.print(f"[red]error:[/] {exc.message}")
    if isinstance(exc, InvalidInput):
        for item in exc.errors:
            err.print(f"  [bold]{item.field}[/]: {item.message}")
    return typer.Exit(1)


def run_with(work: Callable[[Services], Awaitable[T]], *, migrate: bool = True) -> T:
    """Build the services, apply migrations on SQLite, run ``work``, close everything."""
    settings, _ = load_settings()
    if migrate and migrates_itself(settings.database_url):
        migrate_sqlite(settings)

    async def main() -> T:
        services = await build_services(settings)
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(main())
    except SmsbridgeError as exc:
        raise fail(exc) from None


def migrate_sqlite(settings: Settings) -> None:
    # Alembic loads here, not at the top: only commands that migrate pay its 0.2 s.
    from smsbridge.storage.migrate import upgrade

    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgrade(settings.database_url)
