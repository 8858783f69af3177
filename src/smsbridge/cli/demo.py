"""``smsbridge demo``: a first campaign in one command, on the built-in sandbox provider."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import typer

from smsbridge.cli.campaigns import counts_table, follow, with_background
from smsbridge.cli.common import err, out, run_with
from smsbridge.container import Services

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
                # a plain hyphen: an em dash is outside GSM-7 and would make every message
                # UCS-2, i.e. two segments instead of one
                "variables": {"signoff": "- Acme"},
                "audience": {"filter": {"attributes.demo": suffix}},
            }
        )

        async def launch() -> dict[str, Any]:
            await services.campaigns.launch(campaign["id"])
            return await follow(services, campaign["id"], stalled_hint=None)

        view = await with_background(services, True, launch)
        sample = await services.messages.list(limit=3, campaign_id=campaign["id"])
        view["samples"] = sample.items
        return view

    view = run_with(work)
    out.print(counts_table(view))
    for message in view["samples"]:
        out.print(f"  {message['to']} ({message['status']}): {message['body']}", markup=False)
    out.print(
        f"campaign {view['id']}: see `smsbridge campaigns show {view['id']}` or "
        f"GET /api/v1/messages?campaign_id={view['id']}"
    )
