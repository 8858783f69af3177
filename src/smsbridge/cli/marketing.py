"""``smsbridge profiles …``, ``smsbridge campaigns …`` and ``smsbridge demo``."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
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
campaigns_app = typer.Typer(help="Create, launch and follow campaigns.", no_args_is_help=True)

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
            TextColumn("{task.fields[rows]:,} profiles, {task.fields[bad]:,} errors"),
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


def _pairs(values: list[str], option: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            err.print(f"[red]error:[/] {option} takes name=value, got {item!r}")
            raise typer.Exit(2)
        found.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in found.items()}


@campaigns_app.command("create")
def campaigns_create(
    name: str = typer.Option(..., help="A name for people."),
    surface: str = typer.Option(..., help="Surface id (srf_…)."),
    body: str = typer.Option(..., help="The message template, e.g. 'Hi {{ profile.firstName }}'."),
    everyone: bool = typer.Option(False, "--all", help="Audience: every profile."),
    where: list[str] = typer.Option(
        [], "--where", help="Audience filter attribute=value (repeat; same name twice = either)."
    ),
    profile: list[str] = typer.Option([], "--profile", help="Audience: these profile ids."),
    var: list[str] = typer.Option([], "--var", help="Template variable name=value (repeat)."),
    send_at: str | None = typer.Option(None, help="RFC 3339 time with zone to send at."),
    throttle: float | None = typer.Option(None, help="Messages per second for this campaign."),
) -> None:
    """Create a draft campaign (nothing is sent before `campaigns launch`)."""
    from datetime import datetime

    if sum((everyone, bool(where), bool(profile))) != 1:
        err.print("[red]error:[/] give exactly one audience: --all, --where … or --profile …")
        raise typer.Exit(2)
    if everyone:
        audience: dict[str, Any] = {"all": True}
    elif profile:
        audience = {"profile_ids": profile}
    else:
        audience = {"filter": {f"attributes.{k}": v for k, v in _pairs(where, "--where").items()}}
    document: dict[str, Any] = {
        "name": name,
        "surface_id": surface,
        "body": body,
        "audience": audience,
        "variables": _pairs(var, "--var"),
    }
    if throttle is not None:
        document["throttle_per_second"] = throttle
    if send_at is not None:
        try:
            document["send_at"] = datetime.fromisoformat(send_at.replace("Z", "+00:00"))
        except ValueError:
            raise typer.BadParameter("not an RFC 3339 time", param_hint="--send-at") from None

    async def work(services: Services) -> dict[str, Any]:
        return await services.campaigns.create(document)

    view = run_with(work)
    out.print(
        f"{view['id']} created (draft); launch it with: smsbridge campaigns launch {view['id']}"
    )


def _counts_table(view: dict[str, Any]) -> Table:
    counts = view.get("counts") or {}
    table = Table(title=f"{view['name']} — {view['status']}", show_header=True)
    table.add_column("", style="bold")
    table.add_column("messages", justify="right")
    for key in (
        "targeted",
        "excluded",
        "scheduled",
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "suppressed",
        "cancelled",
    ):
        if counts.get(key) or key in ("targeted", "sent", "failed", "excluded"):
            table.add_row(key, f"{counts.get(key, 0):,}")
    for reason, count in sorted((view.get("excluded_reasons") or {}).items()):
        table.add_row(f"  excluded: {reason}", f"{count:,}")
    return table


async def _follow(
    services: Services, campaign_id: str, *, stalled_hint: str | None
) -> dict[str, Any]:
    """Poll the campaign with a progress bar until it is completed or cancelled."""
    view = await services.campaigns.get(campaign_id)
    with Progress(
        TextColumn("[bold]{task.fields[status]}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "sent {task.fields[sent]:,} · failed {task.fields[failed]:,} · "
            "queued {task.fields[queued]:,} · excluded {task.fields[excluded]:,}"
        ),
        TimeElapsedColumn(),
        console=out,
    ) as progress:
        task: TaskID = progress.add_task(
            "campaign", total=None, status="", sent=0, failed=0, queued=0, excluded=0
        )
        last_change, last = time.monotonic(), None
        hinted = False
        while True:
            view = await services.campaigns.get(campaign_id)
            counts = view["counts"]
            done = counts["targeted"] - counts["pending"]
            progress.update(
                task,
                total=counts["targeted"] if view["fanout_done"] else None,
                completed=done,
                status=view["status"],
                sent=counts["sent"] + counts["delivered"],
                failed=counts["failed"],
                queued=counts["pending"],
                excluded=counts["excluded"],
            )
            if view["status"] in ("completed", "cancelled"):
                return view
            snapshot = (done, counts["targeted"])
            if snapshot != last:
                last_change, last = time.monotonic(), snapshot
            elif stalled_hint and not hinted and time.monotonic() - last_change > 10:
                progress.console.print(f"[yellow]no progress for 10 s:[/] {stalled_hint}")
                hinted = True
            await asyncio.sleep(0.5)


async def _with_background(
    services: Services, run_worker: bool, work: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run ``work``, with an in-process delivery worker and campaign runner if asked."""
    if not run_worker:
        return await work()
    worker = services.new_worker()
    runner = services.new_campaign_runner(poll_interval=0.2)
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(runner.run())]
    try:
        return await work()
    finally:
        worker.stop()
        runner.stop()
        await asyncio.gather(*tasks)


@campaigns_app.command("launch")
def campaigns_launch(
    campaign_id: str = typer.Argument(..., help="cmp_…"),
    wait: bool = typer.Option(False, "--wait", help="Follow progress until the campaign ends."),
    run_worker: bool = typer.Option(
        False,
        "--run-worker",
        help="Also run a delivery worker in this process (when no server or worker runs).",
    ),
) -> None:
    """Launch a campaign (idempotent); with --wait, show progress until it ends."""

    async def work(services: Services) -> dict[str, Any]:
        async def launch_and_follow() -> dict[str, Any]:
            view = await services.campaigns.launch(campaign_id)
            if not wait:
                return view
            hint = (
                None
                if run_worker
                else (
                    "is a worker running? (`smsbridge serve`, `smsbridge worker`, "
                    "or add --run-worker)"
                )
            )
            return await _follow(services, campaign_id, stalled_hint=hint)

        return await _with_background(services, run_worker, launch_and_follow)

    view = run_with(work)
    out.print(_counts_table(view))


@campaigns_app.command("show")
def campaigns_show(campaign_id: str = typer.Argument(..., help="cmp_…")) -> None:
    """Print a campaign's status and counts."""

    async def work(services: Services) -> dict[str, Any]:
        return await services.campaigns.get(campaign_id)

    view = run_with(work)
    out.print(_counts_table(view))
    out.print(f"body: {view['body']}")


@campaigns_app.command("cancel")
def campaigns_cancel(campaign_id: str = typer.Argument(..., help="cmp_…")) -> None:
    """Stop a campaign: no more fan-out; messages not yet handed to a worker are cancelled."""

    async def work(services: Services) -> dict[str, Any]:
        return await services.campaigns.cancel(campaign_id)

    out.print(_counts_table(run_with(work)))


@campaigns_app.command("list")
def campaigns_list() -> None:
    """List campaigns, newest first."""

    async def work(services: Services) -> list[dict[str, Any]]:
        return (await services.campaigns.list(limit=100)).items

    table = Table("name", "status", "created")
    table.add_column("id", no_wrap=True, min_width=30)
    for view in run_with(work):
        table.add_row(view["name"], view["status"], str(view["created_at"])[:19], view["id"])
    out.print(table)


DEMO_PROFILES = 1000
FIRST_NAMES = ("Ana", "Bruno", "Chloé", "Dev", "Emma", "Farid", "Giulia", "Hugo", "Inès", "Jonas")


def demo(
    profiles: int = typer.Option(DEMO_PROFILES, min=1, max=100_000, help="How many profiles."),
) -> None:
    """A first campaign in one command, on the built-in sandbox provider: creates a sandbox
    credential and surface, imports profiles, launches a personalized campaign with a link,
    runs the delivery in this process and prints the result."""
    suffix = secrets.token_hex(3)

    async def work(services: Services) -> dict[str, Any]:
        credential = await services.credentials.create(
            {
                "name": f"demo-sandbox-{suffix}",
                "provider_name": "Sandbox",
                "provider_url": "sandbox://default",
                "auth": {"type": "bearer", "token": "demo-token-not-secret"},
                "payload": {"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "{{message}}"},
                "response": {"message_id_path": "$.id"},
            }
        )
        surface = await services.surfaces.create(
            {"name": f"demo-{suffix}", "credential_id": credential.id, "sender": "Acme"}
        )
        out.print(f"credential {credential.id} (sandbox) · surface {surface.id}")

        async def people() -> AsyncIterator[bytes]:
            for n in range(profiles):
                # Every 250th number ends in 0000, which the sandbox refuses: a few failures
                # to look at. The others are distinct French mobile numbers.
                phone = f"+337{n:04d}0000" if n % 250 == 0 else f"+3375{n * 7919 % 10**7:07d}"
                line = {
                    "external_id": f"demo-{suffix}-{n:05d}",
                    "phone": phone,
                    "attributes": {"firstName": FIRST_NAMES[n % len(FIRST_NAMES)], "demo": suffix},
                }
                yield (json.dumps(line) + "\n").encode()

        imported = await services.profiles.import_stream(people(), "application/x-ndjson")
        out.print(f"{imported.imported:,} profiles imported")
        for problem in imported.errors[:5]:
            err.print(f"  line {problem.line}: {problem.field or ''} {problem.message}")
        campaign = await services.campaigns.create(
            {
                "name": f"demo {suffix}",
                "surface_id": surface.id,
                "body": "Hi {{ profile.firstName }}, our spring sale starts now: "
                "https://shop.example.com/spring?src=sms {{ signoff }}",
                "variables": {"signoff": "— Acme"},
                "audience": {"filter": {"attributes.demo": suffix}},
            }
        )

        async def launch() -> dict[str, Any]:
            await services.campaigns.launch(campaign["id"])
            return await _follow(services, campaign["id"], stalled_hint=None)

        view = await _with_background(services, True, launch)
        sample = await services.messages.list(limit=3, campaign_id=campaign["id"])
        view["samples"] = sample.items
        return view

    view = run_with(work)
    out.print(_counts_table(view))
    for message in view["samples"]:
        out.print(f"  {message['to']} ({message['status']}): {message['body']}", markup=False)
    out.print(
        f"campaign {view['id']}: see `smsbridge campaigns show {view['id']}` or "
        f"GET /api/v1/messages?campaign_id={view['id']}"
    )


def report(campaign_id: str = typer.Argument(..., help="cmp_…")) -> None:
    """Print a campaign's report: sends, deliveries, errors, exclusions, clicks, opt-outs."""

    async def work(services: Services) -> dict[str, Any]:
        return await services.reports.campaign(campaign_id)

    numbers = run_with(work)
    rates = numbers["rates"]
    table = Table(title=f"{campaign_id} — {numbers['status']}")
    table.add_column("", style="bold")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("targeted", f"{numbers['targeted']:,}"),
        ("excluded", f"{numbers['excluded']:,}"),
        *((f"  {k}", f"{v:,}") for k, v in sorted(numbers["excluded_reasons"].items())),
        ("sent", f"{numbers['sent']:,}"),
        ("delivered", f"{numbers['delivered']:,} ({rates['delivery']:.1%})"),
        ("bounced", f"{numbers['bounced']:,} ({rates['bounce']:.1%})"),
        ("errors", f"{numbers['errors']:,} ({rates['error']:.1%})"),
        *((f"  {k}", f"{v:,}") for k, v in sorted(numbers["error_reasons"].items())),
        ("pending", f"{numbers['pending']:,}"),
        ("clicks (human)", f"{numbers['clicks']:,}"),
        ("unique clicks", f"{numbers['unique_clicks']:,} ({rates['click']:.1%})"),
        ("bot clicks", f"{numbers['bot_clicks']:,}"),
        ("opt-outs", f"{numbers['opt_outs']:,}"),
        ("segments", f"{numbers['segments']:,}"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    out.print(table)
