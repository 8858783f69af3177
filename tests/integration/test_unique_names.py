"""Credential and surface names are unique (issue 14, point 9), on SQLite and PostgreSQL:
names that differ only in case or spacing clash too; every clash — create or rename, API or
admin form — is a 409 naming the ``name`` field (an inline error in the form)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services
from tests.conftest import ADMIN_KEY

PAYLOAD = {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}


def _credential(name: str) -> dict[str, Any]:
    return {"name": name, "provider_url": "sandbox://default", "payload": PAYLOAD}


def _is_name_clash(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert [e["field"] for e in body["errors"]] == ["name"]
    assert "already exists" in body["errors"][0]["message"]


@pytest.mark.parametrize("variant", ["Acme", "acme", "ACME ", "  acme", "\uff21\uff43\uff4d\uff45"])
async def test_a_credential_name_taken_in_any_case_or_spacing_is_a_409(
    client: httpx.AsyncClient, variant: str
) -> None:
    first = await client.post("/api/v1/credentials", json=_credential("Acme"))
    assert first.status_code == 201, first.text
    _is_name_clash(await client.post("/api/v1/credentials", json=_credential(variant)))
    listed = (await client.get("/api/v1/credentials")).json()["items"]
    assert [c["name"] for c in listed] == ["Acme"]


async def test_renaming_a_credential_onto_another_name_is_a_409(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/v1/credentials", json=_credential("Acme Corp"))
    other = (await client.post("/api/v1/credentials", json=_credential("other"))).json()
    path = f"/api/v1/credentials/{other['id']}"
    _is_name_clash(await client.patch(path, json={"name": "acme  corp"}))
    assert (await client.get(path)).json()["name"] == "other"
    # its own name in another case is no clash
    renamed = await client.patch(path, json={"name": "OTHER"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "OTHER"


async def test_surface_names_clash_on_create_and_rename(client: httpx.AsyncClient) -> None:
    cred = (await client.post("/api/v1/credentials", json=_credential("c"))).json()
    doc = {"credential_id": cred["id"], "sender": "Acme"}
    assert (
        await client.post("/api/v1/surfaces", json={**doc, "name": "alerts"})
    ).status_code == 201
    _is_name_clash(await client.post("/api/v1/surfaces", json={**doc, "name": "Alerts"}))
    other = (await client.post("/api/v1/surfaces", json={**doc, "name": "promo"})).json()
    _is_name_clash(await client.patch(f"/api/v1/surfaces/{other['id']}", json={"name": "ALERTS"}))


# --- the admin forms ---------------------------------------------------------------------------


@pytest.fixture
async def admin(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in, cookie-keeping browser-like client of the admin."""
    app = create_app(settings, prebuilt=services)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://testserver"
        ) as http,
    ):
        page = await http.get("/admin/login")
        await http.post("/admin/login", data={"key": ADMIN_KEY, "csrf": _token(page)})
        yield http


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert found, page.text
    return found.group(1)


def _credential_form(name: str) -> dict[str, str]:
    return {
        "name": name,
        "provider_url": "sandbox://default",
        "auth_type": "none",
        "content_type": "application/json",
        "payload": '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}',
        "do": "save",
    }


def _inline_name_error(page: httpx.Response) -> str:
    found = re.search(r'<p class="error" id="name-error">([^<]*)</p>', page.text)
    assert found, page.text
    return found.group(1)


async def test_the_credential_form_shows_a_name_clash_next_to_the_name(
    admin: httpx.AsyncClient, services: Services
) -> None:
    await services.credentials.create(_credential("Acme"))
    other = await services.credentials.create(_credential("other"))
    page = await admin.get("/admin/credentials/new")
    created = await admin.post(
        "/admin/credentials/new", data={**_credential_form("acme "), "csrf": _token(page)}
    )
    assert created.status_code == 409
    assert "already exists" in _inline_name_error(created)

    page = await admin.get(f"/admin/credentials/{other.id}")
    renamed = await admin.post(
        f"/admin/credentials/{other.id}", data={**_credential_form("ACME"), "csrf": _token(page)}
    )
    assert renamed.status_code == 409
    assert "already exists" in _inline_name_error(renamed)
    assert (await services.credentials.get(other.id)).document["name"] == "other"


async def test_the_surface_form_shows_a_name_clash_next_to_the_name(
    admin: httpx.AsyncClient, services: Services
) -> None:
    cred = await services.credentials.create(_credential("c"))
    await services.surfaces.create({"name": "alerts", "credential_id": cred.id, "sender": "Acme"})
    page = await admin.get("/admin/surfaces/new")
    form = {"csrf": _token(page), "credential_id": cred.id, "sender": "Acme"}
    created = await admin.post("/admin/surfaces/new", data={**form, "name": "Alerts"})
    assert created.status_code == 409
    assert "already exists" in _inline_name_error(created)
