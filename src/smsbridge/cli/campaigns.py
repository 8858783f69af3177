"""``smsbridge campaigns …``: create, launch (following progress), show, cancel, list; and
what ``smsbridge demo`` shares with them (:func:`follow`, :func:`counts_table`,
:func:`with_background`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from smsbridge.cli.common import err, out, run_with
from smsbridge.container import Services

campaigns_app = typer.Typer(help="Create, launch and follow campaigns.", no_args_is_help=True)


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


def counts_table(view: dict[str, Any]) -> Table:
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


async def follow(
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


async def with_background(
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
            return await follow(services, campaign_id, stalled_hint=hint)

        return await with_background(services, run_worker, launch_and_follow)

    view = run_with(work)
    out.print(counts_table(view))


@campaigns_app.command("show")
def campaigns_show(campaign_id: str = typer.Argument(..., help="cmp_…")) -> None:
    """Print a campaign's status and counts."""

    async def work(services: Services) -> dict[str, Any]:
        return await services.campaigns.get(campaign_id)

    view = run_with(work)
    out.print(counts_table(view))
    out.print(f"body: {view['body']}")


@campaigns_app.command("cancel")
def campaigns_cancel(campaign_id: str = typer.Argument(..., help="cmp_…")) -> None:
    """Stop a campaign: no more fan-out; messages not yet handed to a worker are cancelled."""

    async def work(services: Services) -> dict[str, Any]:
        return await services.campaigns.cancel(campaign_id)

    out.print(counts_table(run_with(work)))


@campaigns_app.command("delete")
def campaigns_delete(campaign_id: str = typer.Argument(..., help="cmp_…")) -> None:
    """Delete a draft campaign (a launched one is kept for its report; cancel it instead)."""

    async def work(services: Services) -> None:
        await services.campaigns.delete(campaign_id)

    run_with(work)
    out.print(f"deleted {campaign_id}")


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
