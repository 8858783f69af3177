"""What the browser tests share: the app under uvicorn on a loopback port (:func:`serve`),
and the checks every screen passes (:func:`check_page`). The fixtures built on them
(``site``, ``live_site``, ``browser``) are in ``tests/e2e/conftest.py``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.fernet import Fernet
from pydantic import SecretStr

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from tests.conftest import ADMIN_KEY
from tests.mock_provider import MockProvider, Recorded, Reply

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TOKEN = "tok-browser-9f8e7d6c5b"
HEADER_SECRET = "hdr-secret-4a3b2c1d0e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Site:
    def __init__(self, base: str, services: Services) -> None:
        self.base = base
        self.services = services


@asynccontextmanager
async def serve(sqlite_url: str, tmp_path: Path, *, run_worker: bool) -> AsyncIterator[Site]:
    """The app under uvicorn on a free loopback port (with ``run_worker``: delivery worker and
    campaign runner in-process, as ``smsbridge serve`` runs them)."""
    port = free_port()
    settings = Settings(
        database_url=sqlite_url,
        admin_key=SecretStr(ADMIN_KEY),
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        allow_private_provider_urls=True,
        state_dir=tmp_path / "state",
        public_url=f"http://127.0.0.1:{port}",
        worker_poll_interval=0.2,
    )
    services = await build_services(settings)
    app = create_app(settings, prebuilt=services, run_worker=run_worker)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield Site(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        await task
        await services.close()


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def check_page(page: Any) -> None:
    """Every visible control has a label; nothing overflows sideways; no secret is shown."""
    unlabeled = await page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.type !== 'hidden' && e.labels.length === 0)
            .map(e => e.name || e.id)"""
    )
    assert unlabeled == []
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    wide = await page.evaluate(
        """(limit) => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > limit + 1)
            .slice(-3).map(e => e.tagName + '#' + e.id + '.' + e.className)""",
        viewport,
    )
    assert width <= viewport, f"page is {width}px wide in a {viewport}px viewport: {wide}"
    content = await page.content()
    assert TOKEN not in content
    assert HEADER_SECRET not in content


async def sign_in(page: Any, base: str, key: str) -> None:
    await page.goto(f"{base}/admin/credentials")
    assert page.url.endswith("/admin/login")  # not signed in: sent to the sign-in page
    await page.get_by_label("API key").fill(key)
    await page.get_by_label("API key").press("Enter")  # keyboard only


REFUSED = "+33612345604"
"""The journey's number the provider refuses (400)."""


def journey_setup(mock_provider: MockProvider, tmp_path: Path) -> Path:
    """The brief's journey, its outside parts: the provider accepts every message but one
    (:data:`REFUSED`), and the CSV of profiles to import (returned)."""

    def provider(request: Recorded) -> Reply:
        if REFUSED.encode() in request.body:
            return Reply(status=400, json={"error": "invalid destination"})
        return Reply(json={"id": f"prov-{len(mock_provider.requests)}"})

    mock_provider.responder = provider
    people = tmp_path / "people.csv"
    people.write_text(
        "external_id,phone,firstName\n"
        "crm-1,+33612345601,Ana\n"
        "crm-2,+33612345602,Bo\n"
        "crm-3,+33612345603,Cy\n"  # opted out by hand → excluded
        f"crm-4,{REFUSED},Di\n"  # the provider refuses it → error
        "crm-5,+33612345601,Ed\n"  # Ana's number again → excluded as a duplicate
        "crm-6,12,Fay\n"  # not a phone number → an import error, not a profile
    )
    return people
