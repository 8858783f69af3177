"""``smsbridge credentials …``: provider credentials (list, show, create, delete, test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from smsbridge.cli.common import err, out, run_with
from smsbridge.container import Services
from smsbridge.services.credentials import CredentialView

credentials_app = typer.Typer(help="Manage provider credentials.", no_args_is_help=True)


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

    views = run_with(collect)
    table = Table()
    # Ids are what show/delete/test take: never shortened, whatever the terminal's width
    # (the other columns wrap instead).
    table.add_column("id", no_wrap=True, min_width=max((len(v.id) for v in views), default=2))
    for column in ("name", "provider", "url", "auth", "updated"):
        table.add_column(column)
    for view in views:
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
        out.print(f"[red]failed[/] {status}{result.error}", markup=True)
        if result.provider_answer:
            out.print("provider's answer:", markup=False)
            out.print(result.provider_answer, markup=False, highlight=False)
        raise typer.Exit(1)
