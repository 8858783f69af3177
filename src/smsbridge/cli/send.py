"""``smsbridge send``: one message through a surface; ``smsbridge send-batch``: a file of them."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import typer

from smsbridge.cli.common import err, out, run_with
from smsbridge.container import Services
from smsbridge.errors import InvalidInput
from smsbridge.services.message_rows import SendRequest


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


BATCH = 1000


def _read_messages(path: Path, surface: str | None) -> Iterator[SendRequest | InvalidInput]:
    """The file's messages, one at a time: CSV with a header row (``to``, ``body``, and
    optionally ``surface_id``, ``send_at``, ``profile_id``), or JSON Lines (one object per
    line, fields as in ``POST /api/v1/messages``). A line that cannot be read is its error."""
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix.lower() == ".csv":
            rows: Iterator[dict[str, Any] | InvalidInput] = iter(csv.DictReader(handle))
        else:
            rows = (_json_line(line) for line in handle if line.strip())
        for row in rows:
            if isinstance(row, InvalidInput):
                yield row
                continue
            yield _request(row, surface)


def _json_line(line: str) -> dict[str, Any] | InvalidInput:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return InvalidInput.one("line", f"not JSON ({exc})")
    return value if isinstance(value, dict) else InvalidInput.one("line", "must be an object")


def _request(row: dict[str, Any], surface: str | None) -> SendRequest | InvalidInput:
    known = {"surface_id", "to", "body", "send_at", "profile_id", "variables"}
    unknown = sorted(str(k) for k in row if k not in known)
    if unknown:
        return InvalidInput.one(unknown[0], "is not a known field")
    surface_id = row.get("surface_id") or surface
    if not surface_id:
        return InvalidInput.one("surface_id", "is required (or give --surface)")
    send_at = None
    if row.get("send_at"):
        try:
            send_at = datetime.fromisoformat(str(row["send_at"]))
        except ValueError:
            return InvalidInput.one("send_at", "must be an ISO 8601 time, e.g. 2026-05-01T09:00Z")
    variables = row.get("variables") or {}
    if not isinstance(variables, dict):
        return InvalidInput.one("variables", "must be an object")
    return SendRequest(
        surface_id=str(surface_id),
        to=str(row["to"]) if row.get("to") else None,
        body=str(row.get("body") or ""),
        send_at=send_at,
        profile_id=str(row["profile_id"]) if row.get("profile_id") else None,
        variables=variables,
    )


def send_batch(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Messages: a .csv (to,body,…) or JSON Lines file."
    ),
    surface: str | None = typer.Option(
        None, "--surface", help="Surface id for the lines that do not name one."
    ),
) -> None:
    """Send many messages from a file, 1,000 per transaction; prints each refused line."""

    async def main(services: Services) -> tuple[int, int]:
        accepted = refused = 0
        chunk: list[SendRequest | InvalidInput] = []
        line = 0

        async def flush() -> None:
            nonlocal accepted, refused
            _, answer = await services.messages.send_batch(chunk)
            for result in answer["results"]:
                if result["status"] == 202:
                    accepted += 1
                    continue
                refused += 1
                number = line - len(chunk) + result["index"] + 1
                for error in result["problem"]["errors"]:
                    field = error["field"].split(".", 1)[-1]
                    err.print(f"  line {number}: [bold]{field}[/]: {error['message']}")
            chunk.clear()
            out.print(f"{accepted + refused} read: {accepted} accepted, {refused} refused")

        for request in _read_messages(file, surface):
            chunk.append(request)
            line += 1
            if len(chunk) == BATCH:
                await flush()
        if chunk:
            await flush()
        return accepted, refused

    _, refused = run_with(main)
    if refused:
        raise typer.Exit(1)
