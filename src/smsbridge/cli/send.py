"""``smsbridge send``: one message through a surface."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from smsbridge.cli.common import out, run_with
from smsbridge.container import Services
from smsbridge.services.messages import SendRequest


def send(
    text: str = typer.Argument(..., help="The message text."),
    surface: str = typer.Option(..., "--surface", help="Surface id (srf_…)."),
    to: str = typer.Option(..., "--to", help="Destination number, E.164 (+33612345678)."),
    wait: bool = typer.Option(
        False, "--wait", help="Wait until the message is sent or fails (needs a running worker)."
    ),
) -> None:
    """Send one message through a surface."""

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
