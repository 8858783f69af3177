"""Deleting a surface from the admin (issue 18, items 4 and 7), on SQLite and PostgreSQL: asked
first, refused as the API refuses (messages still to send; campaigns, named), CSRF-checked and
for admin keys only. The browser journey is in tests/e2e/test_surfaces_reports_browser.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from urllib.parse import unquote_plus

import httpx
import pytest
from fastapi import FastAPI

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services
from smsbridge.services.message_rows import SendRequest
from tests.conftest import ADMIN_KEY

PAYLOAD = {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}


async def _signed_in(app: FastAPI, key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        page = await http.get("/admin/login")
        await http.post("/admin/login", data={"key": key, "csrf": _token(page)})
        yield http


@pytest.fixture
async def admin(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, prebuilt=services)
    async with app.router.lifespan_context(app):
        async for http in _signed_in(app, ADMIN_KEY):
            yield http


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert found, page.text
    return found.group(1)


async def _surface(services: Services, name: str) -> str:
    credential = await services.credentials.create(
        {"name": f"{name} gateway", "provider_url": "sandbox://default", "payload": PAYLOAD}
    )
    created = await services.surfaces.create(
        {"name": name, "credential_id": credential.id, "sender": "Acme"}
    )
    return created.id


async def _delete(admin: httpx.AsyncClient, surface_id: str) -> str:
    """Confirm the deletion as the page offers it; the list's notice that follows."""
    page = await admin.get(f"/admin/surfaces/{surface_id}/delete")
    assert page.status_code == 200, page.text
    done = await admin.post(f"/admin/surfaces/{surface_id}/delete", data={"csrf": _token(page)})
    assert done.status_code == 303
    listed = await admin.get(done.headers["location"])
    notice = re.search(r'<p class="notice (\w+)" role="(\w+)">([^<]*)</p>', listed.text)
    assert notice, listed.text
    kind, role, text = notice.groups()
    assert (kind == "bad") == (role == "alert")
    return f"{kind}: {unescape(text)}"


async def test_an_unused_surface_is_deleted(admin: httpx.AsyncClient, services: Services) -> None:
    surface_id = await _surface(services, "Old promo")
    page = await admin.get(f"/admin/surfaces/{surface_id}/delete")
    assert "<h1>Delete Old promo?</h1>" in page.text
    assert await _delete(admin, surface_id) == "ok: Deleted Old promo"
    assert (await services.surfaces.list()).items == []


async def test_a_surface_with_messages_to_send_is_kept(
    admin: httpx.AsyncClient, services: Services
) -> None:
    surface_id = await _surface(services, "Busy one")
    await services.messages.send(SendRequest(surface_id, "+33612345678", "Hello"))  # queued
    said = await _delete(admin, surface_id)
    assert said.startswith("bad: Not deleted: the surface has scheduled or queued messages"), said
    assert [v.id for v in (await services.surfaces.list()).items] == [surface_id]


async def test_a_surface_campaigns_use_is_kept_and_they_are_named(
    admin: httpx.AsyncClient, services: Services
) -> None:
    surface_id = await _surface(services, "Spring promo")
    for name in ("Spring sale", "Easter"):
        await services.campaigns.create(
            {"name": name, "surface_id": surface_id, "body": "Hi", "audience": {"all": True}}
        )
    said = await _delete(admin, surface_id)
    assert said.startswith("bad: Not deleted: the surface is used by 2 campaign(s)"), said
    assert "'Spring sale'" in said and "'Easter'" in said


async def test_deleting_needs_the_forms_token_and_an_existing_surface(
    admin: httpx.AsyncClient, services: Services
) -> None:
    surface_id = await _surface(services, "Kept")
    forged = await admin.post(f"/admin/surfaces/{surface_id}/delete", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert len((await services.surfaces.list()).items) == 1

    gone = await admin.get("/admin/surfaces/srf_nope/delete")
    assert gone.status_code == 303
    assert unquote_plus(gone.headers["location"]) == "/admin/surfaces?bad=No such surface"
    page = await admin.get("/admin/surfaces")
    posted = await admin.post("/admin/surfaces/srf_nope/delete", data={"csrf": _token(page)})
    assert posted.status_code == 303 and "No+such+surface" in posted.headers["location"]


async def test_only_admin_keys_delete_surfaces(settings: Settings, services: Services) -> None:
    surface_id = await _surface(services, "Guarded")
    sender = await services.api_keys.create("campaigner", "sender")
    app = create_app(settings, prebuilt=services)
    async with app.router.lifespan_context(app):
        async for http in _signed_in(app, sender.key):
            page = await http.get(f"/admin/surfaces/{surface_id}/delete")
            assert page.status_code == 403
            posted = await http.post(
                f"/admin/surfaces/{surface_id}/delete", data={"csrf": _token(page)}
            )
            assert posted.status_code == 403
    assert len((await services.surfaces.list()).items) == 1
