"""The ``smsbridge`` command line: serve, worker, migrate, keys, credentials, send, and (in
:mod:`smsbridge.cli.marketing`) profiles, campaigns and demo."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from smsbridge import __version__, process_tuning
from smsbridge.cli import marketing
from smsbridge.cli.common import err, load_settings, migrate_sqlite, out, run_with
from smsbridge.container import Services
from smsbridge.services.credentials import CredentialView

app = typer.Typer(
    help="smsbridge: send SMS through any HTTP SMS provider.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(
    help="Manage API keys and the encryption of stored secrets.", no_args_is_help=True
)
credentials_app = typer.Typer(help="Manage provider credentials.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(credentials_app, name="credentials")
app.add_typer(marketing.profiles_app, name="profiles")
app.add_typer(marketing.campaigns_app, name="campaigns")
app.command()(marketing.demo)
app.command()(marketing.report)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        out.print(f"smsbridge {__version__}")
        raise typer.Exit()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Do not run the in-process delivery worker."
    ),
) -> None:
    """Run the API and admin UI (applies migrations itself on SQLite)."""
    import uvicorn

    from smsbridge.api import access_log
    from smsbridge.app import create_app

    settings, generated = load_settings()
    if settings.is_sqlite:
        migrate_sqlite(settings)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    url = f"http://{host}:{port}"
    out.print(f"[bold green]smsbridge {__version__}[/] on {url}")
    out.print(f"  admin UI:  {url}/admin")
    out.print(f"  API docs:  {url}/docs")
    if generated.admin_key_file is not None and settings.admin_key is not None:
        out.print(f"  admin key: {settings.admin_key.get_secret_value()}")
        out.print(f"             (kept in {generated.admin_key_file}, mode 0600)")
    else:
        out.print("  admin key: the value of SMSBRIDGE_ADMIN_KEY")
    if no_worker:
        out.print("  worker:    disabled (--no-worker); run `smsbridge worker` elsewhere")
    access_log.install()
    uvicorn.run(
        create_app(settings, run_worker=not no_worker, settle=True),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
    )


@app.command()
def worker(
    concurrency: int | None = typer.Option(None, help="Parallel sends (default 64)."),
) -> None:
    """Run a delivery worker (and campaign fan-outs) alone: as many as you like, on any host
    sharing the database."""
    settings, _ = load_settings()
    if settings.is_sqlite:
        migrate_sqlite(settings)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")

    async def main(services: Services) -> None:
        delivery = (
            services.new_worker(concurrency=concurrency) if concurrency else services.new_worker()
        )
        runner = services.new_campaign_runner()
        process_tuning.settle()

        def stop() -> None:
            delivery.stop()
            runner.stop()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop)
        out.print(f"worker {delivery.name} running; SIGTERM or Ctrl-C stops it gracefully")
        await asyncio.gather(delivery.run(), runner.run())

    run_with(main, migrate=False)


@app.command()
def send(
    text: str = typer.Argument(..., help="The message text."),
    surface: str = typer.Option(..., "--surface", help="Surface id (srf_…)."),
    to: str = typer.Option(..., "--to", help="Destination number, E.164 (+33612345678)."),
    wait: bool = typer.Option(
        False, "--wait", help="Wait until the message is sent or fails (needs a running worker)."
    ),
) -> None:
    """Send one message through a surface."""
    from smsbridge.services.messages import SendRequest

    async def main(services: Services) -> dict[str, Any]:
        _, view = await services.messages.send(SendRequest(surface_id=surface, to=to, body=text))
        if not wait:
            return view
        for _ in range(300):
            view = await services.messages.get(view["id"])
            if view["status"] not in ("scheduled", "queued", "sending"):
                return view
            await asyncio.sleep(0.1)
        return view

    view = run_with(main)
    out.print(f"{view['id']} {view['status']} ({view['segments']} segment(s), {view['encoding']})")
    if view.get("last_error"):
        out.print(f"  last error: {view['last_error']}")
    if view["status"] in ("failed", "cancelled"):
        raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Apply database migrations (PostgreSQL needs this; SQLite is migrated by serve)."""
    settings, _ = load_settings()
    migrate_sqlite(settings)
    out.print("database is up to date")


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., help="admin, sender or viewer."),
    name: str = typer.Option(..., help="What the key is for."),
) -> None:
    """Create an API key; the key is printed once and only its hash is stored."""
    created = run_with(lambda s: s.api_keys.create(name, role))
    out.print(f"created {created.id} ({created.role}) [bold]{created.name}[/]")
    out.print("key (shown once, store it now):")
    print(created.key)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never the keys themselves)."""
    rows = run_with(lambda s: s.api_keys.list())
    table = Table("id", "name", "role", "prefix", "created", "revoked")
    for row in rows:
        table.add_row(
            row.id,
            row.name,
            row.role,
            row.prefix + "…",
            row.created_at.isoformat(timespec="seconds"),
            row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key id (key_…).")) -> None:
    """Revoke an API key at once."""
    run_with(lambda s: s.api_keys.revoke(key_id))
    out.print(f"revoked {key_id}")


@keys_app.command("rotate-secrets")
def keys_rotate_secrets() -> None:
    """Re-encrypt every stored secret under the first SMSBRIDGE_SECRET_KEYS key.

    Put the new key first, keep the old ones after it, run this, then drop the old keys.
    """
    count = run_with(lambda s: s.credentials.rotate_secrets())
    out.print(f"re-encrypted the secrets of {count} credential(s) under the first key")


def _credential_json(view: CredentialView) -> str:
    document = {
        "id": view.id,
        **view.document,
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


@credentials_app.command("list")
def credentials_list() -> None:
    """List credentials."""

    async def collect(services: Services) -> list[CredentialView]:
        views: list[CredentialView] = []
        cursor: str | None = None
        while True:
            page = await services.credentials.list(limit=200, cursor=cursor)
            views.extend(page.items)
            if page.next_cursor is None:
                return views
            cursor = page.next_cursor

    table = Table("id", "name", "provider", "url", "auth", "updated")
    for view in run_with(collect):
        doc = view.document
        table.add_row(
            view.id,
            doc["name"],
            doc.get("provider_name", ""),
            doc["provider_url"],
            doc["auth"]["type"],
            view.updated_at.isoformat(timespec="seconds"),
        )
    out.print(table)


@credentials_app.command("show")
def credentials_show(credential_id: str = typer.Argument(..., help="cred_…")) -> None:
    """Show one credential as JSON (secrets as hints)."""
    print(_credential_json(run_with(lambda s: s.credentials.get(credential_id))))


@credentials_app.command("create")
def credentials_create(
    from_file: Path = typer.Option(
        ..., "--from-file", help="A JSON credential document.", exists=True, dir_okay=False
    ),
) -> None:
    """Create a credential from a JSON file (same shape as POST /api/v1/credentials)."""
    try:
        document: Any = json.loads(from_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        err.print(f"[red]error:[/] {from_file}: not a JSON document ({exc})")
        raise typer.Exit(1) from None
    if not isinstance(document, dict):
        err.print(f"[red]error:[/] {from_file}: must hold a JSON object")
        raise typer.Exit(1)
    view = run_with(lambda s: s.credentials.create(document))
    out.print(f"created {view.id} [bold]{view.document['name']}[/]")


@credentials_app.command("delete")
def credentials_delete(credential_id: str = typer.Argument(..., help="cred_…")) -> None:
    """Delete a credential (refused while a surface uses it)."""
    run_with(lambda s: s.credentials.delete(credential_id))
    out.print(f"deleted {credential_id}")


@credentials_app.command("test")
def credentials_test(
    credential_id: str = typer.Argument(..., help="cred_…"),
    to: str = typer.Option(..., "--to", help="Destination number, E.164 (+33612345678)."),
    message: str = typer.Option("smsbridge test message", help="Text to send."),
    sender: str | None = typer.Option(None, "--from", help="Sender id or number."),
) -> None:
    """Validate a credential with a real test send."""
    result = run_with(
        lambda s: s.credentials.test(credential_id, to=to, sender=sender, message=message)
    )
    if result.ok:
        out.print(
            f"[green]ok[/] HTTP {result.status_code}, provider id "
            f"{result.provider_message_id or '(none)'}, {result.latency_ms} ms"
        )
    else:
        status = f"HTTP {result.status_code}: " if result.status_code else ""
        out.print(f"[red]failed[/] {status}{result.error}")
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
