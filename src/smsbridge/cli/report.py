"""``smsbridge report``: a campaign's report in a table."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from smsbridge.cli.common import out, run_with
from smsbridge.container import Services


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
