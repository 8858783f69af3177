"""What every ``smsbridge`` command shares: consoles, settings, running with the services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

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
    """Print ``exc`` once: a field error on one line; several, one per line under a count."""
    problems = exc.errors if isinstance(exc, InvalidInput) else []
    if len(problems) == 1:
        only = problems[0]
        err.print(f"[red]error:[/] [bold]{escape(only.field)}[/]: {escape(only.message)}")
    elif problems:
        err.print(f"[red]error:[/] {len(problems)} problems with the input:")
        for item in problems:
            err.print(f"  [bold]{escape(item.field)}[/]: {escape(item.message)}")
    else:
        err.print(f"[red]error:[/] {escape(exc.message)}")
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
