"""Webhook mappings of custom credentials (issue 14, point 5), on SQLite and PostgreSQL: the
README's sandbox credential reaches ``delivered``; the admin form edits inbound and
delivery-report mappings, checks a pasted sample webhook with them, and shows each mistake
next to its field; a surface page says what its credential lacks instead of offering a webhook
URL that would refuse every post."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from tests.conftest import ADMIN_KEY, ClientFactory

README = Path(__file__).resolve().parents[2] / "README.md"
PAYLOAD = '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}'


def _readme_credential() -> dict[str, Any]:
    """The credential the README's walk-through creates with curl, as written there."""
    found = re.search(
        r"curl -s -X POST \$API/credentials .*?-d '(\{.*?\})'", README.read_text(), re.S
    )
    assert found, "the README no longer shows how to create a credential"
    document: dict[str, Any] = json.loads(found.group(1))
    assert document["provider_url"] == "sandbox://default" and "preset" not in document
    return document


async def test_the_readme_sandbox_credential_reaches_delivered(
    settings: Settings, make_client: ClientFactory
) -> None:
    http_client: dict[str, httpx.AsyncClient] = {}

    async def post(url: str, body: bytes) -> None:
        # The sandbox posts to the public URL; here the app is reached in-process.
        await http_client["c"].post(
            url[url.index("/hooks/") :], content=body, headers={"Content-Type": "application/json"}
        )

    services = await build_services(settings, sandbox_report=post)
    try:
        async with make_client(settings, services, base_url="http://t") as http:
            http_client["c"] = http
            created = await http.post("/api/v1/credentials", json=_readme_credential())
            assert created.status_code == 201, created.text
            # the sandbox's mappings apply, and show
            assert created.json()["delivery_reports"]["status_path"] == "$.status"
            surface = await http.post(
                "/api/v1/surfaces",
                json={"name": "alerts", "credential_id": created.json()["id"], "sender": "Acme"},
            )
            assert surface.status_code == 201, surface.text
            sent = await http.post(
                "/api/v1/messages",
                json={"surface_id": surface.json()["id"], "to": "+33612345678", "body": "Hi"},
            )
            await services.new_worker().drain()
            status = ""
            for _ in range(50):
                status = (await http.get(f"/api/v1/messages/{sent.json()['id']}")).json()["status"]
                if status != "sent":
                    break
                await asyncio.sleep(0.1)
            assert status == "delivered"
    finally:
        await services.close()


async def test_a_mapping_given_on_the_sandbox_is_kept_as_given(client: httpx.AsyncClient) -> None:
    document = {
        **_readme_credential(),
        "delivery_reports": {"message_id_path": "$.ref", "status_path": "$.state"},
    }
    created = await client.post("/api/v1/credentials", json=document)
    assert created.status_code == 201, created.text
    reports = created.json()["delivery_reports"]
    assert (reports["message_id_path"], reports["status_path"]) == ("$.ref", "$.state")
    assert created.json()["inbound"]["text_path"] == "$.text"  # not given: the sandbox's


# --- the admin form ----------------------------------------------------------------------------


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


def _form(**fields: str) -> dict[str, str]:
    return {
        "name": "acme-gw",
        "provider_url": "https://sms.example.com/send",
        "auth_type": "none",
        "content_type": "application/json",
        "payload": PAYLOAD,
        "do": "save",
        **fields,
    }


MAPPINGS = {
    "reports_items_path": "$.results[*]",
    "reports_message_id_path": "$.messageId",
    "reports_status_path": "$.status.groupName",
    "reports_error_path": "$.error.id",
    "reports_status_map": "DELIVERED = delivered\r\nUNDELIVERABLE = undelivered\r\n",
    "inbound_items_path": "$.results[*]",
    "inbound_from_path": "$.from",
    "inbound_to_path": "$.to",
    "inbound_text_path": "$.text",
}
SAMPLE = json.dumps(
    {
        "results": [
            {"messageId": "m-1", "status": {"groupName": "DELIVERED"}, "error": {"id": 0}},
            {"messageId": "m-2", "status": {"groupName": "UNDELIVERABLE"}, "error": {"id": 5}},
            {"messageId": "m-3"},
        ]
    }
)


def _error(page: httpx.Response, field: str) -> str:
    found = re.search(rf'<p class="error" id="{re.escape(field)}-error">([^<]*)</p>', page.text)
    assert found, f"no inline error for {field}"
    return found.group(1)


def _cells(page: httpx.Response) -> list[list[str]]:
    section = page.text[page.text.index('id="sample-result"') :]
    rows = re.findall(r"<tr>(.*?)</tr>", section, re.S)
    return [re.findall(r"<td>(.*?)</td>", row) for row in rows[1:]]


async def test_the_form_saves_mappings_and_an_edit_can_clear_them(
    admin: httpx.AsyncClient, services: Services
) -> None:
    page = await admin.get("/admin/credentials/new")
    saved = await admin.post(
        "/admin/credentials/new", data={**_form(**MAPPINGS), "csrf": _token(page)}
    )
    assert saved.status_code == 303, saved.text
    [view] = (await services.credentials.list()).items
    assert view.document["delivery_reports"] == {
        "items_path": "$.results[*]",
        "message_id_path": "$.messageId",
        "status_path": "$.status.groupName",
        "error_path": "$.error.id",
        "status_map": {"DELIVERED": "delivered", "UNDELIVERABLE": "undelivered"},
    }
    assert view.document["inbound"]["from_path"] == "$.from"

    page = await admin.get(f"/admin/credentials/{view.id}")
    assert 'value="$.status.groupName"' in page.text
    assert "UNDELIVERABLE = undelivered" in page.text
    kept = {k: v for k, v in MAPPINGS.items() if k.startswith("reports_")}
    edited = await admin.post(
        f"/admin/credentials/{view.id}", data={**_form(**kept), "csrf": _token(page)}
    )
    assert edited.status_code == 303, edited.text
    document = (await services.credentials.get(view.id)).document
    assert "inbound" not in document and document["delivery_reports"]["status_path"]


async def test_the_sample_check_shows_what_the_unsaved_mapping_reads(
    admin: httpx.AsyncClient, services: Services
) -> None:
    page = await admin.get("/admin/credentials/new")
    form = {**_form(**MAPPINGS), "csrf": _token(page), "sample_body": SAMPLE}
    checked = await admin.post("/admin/credentials/new", data={**form, "do": "check_reports"})
    assert checked.status_code == 200, checked.text
    assert _cells(checked) == [
        ["m-1", "DELIVERED", "delivered", ""],
        ["m-2", "UNDELIVERABLE", "undelivered", "5"],
    ]
    assert "item 2: no message id or status" in checked.text
    assert 'value="$.status.groupName"' in checked.text  # the form comes back as typed
    assert (await services.credentials.list()).items == []  # nothing saved

    inbound = json.dumps(
        {"results": [{"from": "+33612345678", "to": "+15550001111", "text": "STOP é"}]}
    )
    checked = await admin.post(
        "/admin/credentials/new", data={**form, "sample_body": inbound, "do": "check_inbound"}
    )
    assert _cells(checked) == [["+33612345678", "+15550001111", "STOP é", ""]]


async def test_a_form_encoded_sample_reads_as_a_flat_object(admin: httpx.AsyncClient) -> None:
    page = await admin.get("/admin/credentials/new")
    checked = await admin.post(
        "/admin/credentials/new",
        data={
            **_form(
                reports_message_id_path="$.MessageSid",
                reports_status_path="$.MessageStatus",
                reports_status_map="delivered = delivered",
            ),
            "csrf": _token(page),
            "sample_body": "MessageSid=SM1&MessageStatus=delivered&To=%2B33612345678",
            "sample_type": "application/x-www-form-urlencoded",
            "do": "check_reports",
        },
    )
    assert _cells(checked) == [["SM1", "delivered", "delivered", ""]]


HOSTILE: list[tuple[dict[str, str], str, str]] = [
    ({"reports_status_path": "$.status["}, "delivery_reports-status_path", "JSONPath"),
    ({"reports_status_path": ""}, "delivery_reports-status_path", "required"),
    ({"reports_status_map": "DELIVERED delivered"}, "delivery_reports-status_map", "line 1"),
    ({"reports_status_map": "DELIVERED = read"}, "delivery_reports-status_map", "DELIVERED"),
    ({"inbound_text_path": ""}, "inbound-text_path", "required"),
    ({"sample_body": ""}, "sample_body", "paste"),
    ({"sample_body": "{not json"}, "sample_body", "not JSON"),
    ({"sample_body": "x" * (64 * 1024 + 1)}, "sample_body", "64 KiB"),
    ({"sample_body": "[" * 5000 + "]" * 5000}, "sample_body", "JSON"),
    ({"sample_body": "[" * 900 + "]" * 900, "reports_items_path": "$..x"}, "sample_body", "paths"),
    ({"sample_body": "\x00é😀"}, "sample_body", "JSON"),
    ({"sample_type": "text/xml"}, "sample_type", "must be one of"),
]


@pytest.mark.parametrize(("fields", "error_id", "says"), HOSTILE)
async def test_each_mistake_shows_next_to_its_field(
    admin: httpx.AsyncClient, fields: dict[str, str], error_id: str, says: str
) -> None:
    page = await admin.get("/admin/credentials/new")
    form = {**_form(**MAPPINGS), "csrf": _token(page), "sample_body": SAMPLE, "do": "check_reports"}
    checked = await admin.post("/admin/credentials/new", data={**form, **fields})
    assert checked.status_code == 422, checked.text
    assert says in _error(checked, error_id)
    if not error_id.startswith("sample"):  # saving is refused the same way
        saved = await admin.post("/admin/credentials/new", data={**form, **fields, "do": "save"})
        assert saved.status_code == 422
        assert says in _error(saved, error_id)


async def test_the_surface_page_says_what_its_credential_lacks(
    admin: httpx.AsyncClient, services: Services
) -> None:
    bare = await services.credentials.create(
        {
            "name": "bare",
            "provider_url": "https://sms.example.com/send",
            "payload": json.loads(PAYLOAD),
        }
    )
    surface = await services.surfaces.create(
        {"name": "alerts", "credential_id": bare.id, "sender": "Acme"}
    )
    page = await admin.get(f"/admin/surfaces/{surface.id}")
    assert "has no delivery-report mapping" in page.text
    assert "has no inbound mapping" in page.text
    assert surface.status_webhook_url not in page.text
    assert f'href="/admin/credentials/{bare.id}#webhook-mappings"' in page.text

    await services.credentials.update(
        bare.id, {"delivery_reports": {"message_id_path": "$.id", "status_path": "$.s"}}
    )
    page = await admin.get(f"/admin/surfaces/{surface.id}")
    assert "has no status map" in page.text

    sandbox = await services.credentials.create({"name": "sbx", **_readme_credential()})
    await services.surfaces.update(surface.id, {"credential_id": sandbox.id})
    page = await admin.get(f"/admin/surfaces/{surface.id}")
    assert surface.status_webhook_url in page.text and surface.inbound_webhook_url in page.text
    assert "not ready" not in page.text
