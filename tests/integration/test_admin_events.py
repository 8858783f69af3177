"""Channels > Event endpoints in the admin, on SQLite and PostgreSQL, without a browser: admin
keys only, CSRF-checked, the secret shown once, bad input beside its field, unknown ids led
back to the list. The browser journey is in tests/e2e/test_event_endpoints_browser.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services
from tests.conftest import ADMIN_KEY
from tests.integration.test_admin_surface_delete import _signed_in, _token


@pytest.fixture
async def admin(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, prebuilt=services)
    async with app.router.lifespan_context(app):
        async for http in _signed_in(app, ADMIN_KEY):
            yield http


async def test_an_endpoint_added_and_refused_from_the_admin(
    admin: httpx.AsyncClient, services: Services
) -> None:
    page = await admin.get("/admin/events")
    assert page.status_code == 200 and "No event endpoints yet." in page.text
    refused = await admin.post(
        "/admin/events/new",
        data={"csrf": _token(page), "url": "http://169.254.169.254/latest", "all_types": "all"},
    )
    assert refused.status_code == 422 and 'id="url-error"' in refused.text
    assert (await services.events.list()).items == []
    added = await admin.post(
        "/admin/events/new",
        data={
            "csrf": _token(page),
            "url": "https://hooks.example.com/sms",
            "event_types": ["message.delivered", "message.received"],
        },
    )
    assert added.status_code == 200
    [endpoint] = (await services.events.list()).items
    assert endpoint["event_types"] == ["message.delivered", "message.received"]
    assert 'id="created-secret" value="whsec_' in added.text
    again = await admin.get("/admin/events")
    assert "whsec_" not in again.text.replace(endpoint["secret_hint"], "")
    forged = await admin.post(f"/admin/events/{endpoint['id']}/delete", data={"csrf": "nope"})
    assert forged.status_code == 403
    gone = await admin.get("/admin/events/ep_nope")
    assert gone.status_code == 303 and "/admin/events?bad=" in gone.headers["location"]
    deleted = await admin.post(
        f"/admin/events/{endpoint['id']}/delete", data={"csrf": _token(again)}
    )
    assert deleted.status_code == 303
    assert (await services.events.list()).items == []


async def test_only_admin_keys_see_event_endpoints(settings: Settings, services: Services) -> None:
    sender = await services.api_keys.create("campaigner", "sender")
    app = create_app(settings, prebuilt=services)
    async with app.router.lifespan_context(app):
        async for http in _signed_in(app, sender.key):
            page = await http.get("/admin/events")
            assert page.status_code == 403
            posted = await http.post(
                "/admin/events/new",
                data={"csrf": _token(page), "url": "https://x.example.com", "all_types": "all"},
            )
            assert posted.status_code == 403
    assert (await services.events.list()).items == []
