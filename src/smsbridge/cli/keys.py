"""``smsbridge keys …``: API keys and the encryption of stored secrets."""

from __future__ import annotations

import typer
from rich.table import Table

from smsbridge.cli.common import out, run_with

keys_app = typer.Typer(
    help="Manage API keys and the encryption of stored secrets.", no_args_is_help=True
)


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
