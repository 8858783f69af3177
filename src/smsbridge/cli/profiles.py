"""``smsbridge profiles …``: import (streamed, with a progress bar) and show profiles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from smsbridge.cli.common import err, out, run_with
from smsbridge.container import Services
from smsbridge.services.profiles import ImportResult

profiles_app = typer.Typer(
    help="Manage profiles (the people campaigns reach).", no_args_is_help=True
)

READ_CHUNK = 256 * 1024
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/x-ndjson",
}


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, READ_CHUNK):
            yield chunk


@profiles_app.command("import")
def profiles_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv or .ndjson file."),
    file_format: str | None = typer.Option(
        None, "--format", help="csv or ndjson (default: from the file extension)."
    ),
) -> None:
    """Import profiles from CSV (header external_id,phone,…) or NDJSON, streamed, with a
    progress bar; good lines are imported even when others fail."""
    if file_format is not None:
        content_type = {"csv": "text/csv", "ndjson": "application/x-ndjson"}.get(file_format)
    else:
        content_type = CONTENT_TYPES.get(file.suffix.lower())
    if content_type is None:
        err.print("[red]error:[/] give --format csv or --format ndjson")
        raise typer.Exit(2)
    size = file.stat().st_size

    async def work(services: Services) -> ImportResult:
        with Progress(
            TextColumn("[bold]importing[/]"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("profiles {task.fields[rows]:,}, lines refused {task.fields[bad]:,}"),
            TimeElapsedColumn(),
            console=out,
        ) as progress:
            task = progress.add_task("import", total=size, rows=0, bad=0)

            def report(read: int, result: ImportResult) -> None:
                progress.update(task, completed=read, rows=result.imported, bad=result.error_count)

            return await services.profiles.import_stream(
                _file_chunks(file), content_type, progress=report
            )

    result = run_with(work)
    out.print(
        f"[green]{result.imported:,}[/] profiles imported from {result.lines:,} lines; "
        f"{result.error_count:,} error(s)"
    )
    if result.errors:
        table = Table("line", "field", "problem", title="First problems")
        for error in result.errors[:20]:
            table.add_row(str(error.line), error.field or "-", error.message)
        out.print(table)
        raise typer.Exit(1)


@profiles_app.command("show")
def profiles_show(
    external_id: str = typer.Argument(..., help="The profile's external_id."),
) -> None:
    """Print one profile as JSON."""

    async def work(services: Services) -> dict[str, Any]:
        return await services.profiles.get(external_id)

    out.print_json(json.dumps(run_with(work), default=str))
