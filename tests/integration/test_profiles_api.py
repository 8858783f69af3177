"""Profiles over the HTTP API on SQLite and PostgreSQL: upsert, read, delete, list, and
streamed NDJSON / CSV imports with per-line errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.services.profiles import IMPORT_BATCH
from tests.conftest import ClientFactory

NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv; charset=utf-8"}


async def _import(client: httpx.AsyncClient, content: Any, headers: dict[str, str]) -> Any:
    response = await client.post("/api/v1/profiles/import", content=content, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_put_get_delete(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/api/v1/profiles/u-1",
        json={
            "phone": "+33 6 12 34 56 78",
            "attributes": {"firstName": "Ana"},
            "timezone": "Europe/Paris",
        },
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["phone"] == "+33612345678"
    assert created["attributes"] == {"firstName": "Ana"}
    assert created["timezone"] == "Europe/Paris"

    replaced = await client.put("/api/v1/profiles/u-1", json={"phone": "+33612345679"})
    assert replaced.json()["attributes"] == {}  # PUT replaces the whole profile
    assert replaced.json()["created_at"] == created["created_at"]

    found = await client.get("/api/v1/profiles/u-1")
    assert found.json()["phone"] == "+33612345679"
    assert (await client.delete("/api/v1/profiles/u-1")).status_code == 204
    assert (await client.get("/api/v1/profiles/u-1")).status_code == 404
    assert (await client.delete("/api/v1/profiles/u-1")).status_code == 404


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"phone": "not a phone"}, "phone"),
        ({}, "phone"),
        ({"phone": "+33612345678", "timezone": "Mars/Olympus"}, "timezone"),
        ({"phone": "+33612345678", "attributes": {"first name": "x"}}, "attributes.first name"),
        ({"phone": "+33612345678", "external_id": "other"}, "external_id"),
        ({"phone": "+33612345678", "firstName": "Ana"}, "firstName"),
    ],
)
async def test_bad_profiles_are_refused_field_by_field(
    client: httpx.AsyncClient, document: dict[str, Any], field: str
) -> None:
    response = await client.put("/api/v1/profiles/u-2", json=document)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_national_numbers_use_the_default_region(
    settings: Settings, make_client: ClientFactory
) -> None:
    regional = settings.model_copy(update={"default_region": "FR"})
    services = await build_services(regional)
    try:
        async with make_client(regional, services, base_url="http://t") as http:
            response = await http.put("/api/v1/profiles/fr-1", json={"phone": "06 12 34 56 78"})
            assert response.json()["phone"] == "+33612345678"
    finally:
        await services.close()


async def test_ndjson_import_with_good_and_bad_lines(client: httpx.AsyncClient) -> None:
    lines = [
        '{"external_id": "a", "phone": "+33612345601", "attributes": {"firstName": "Ana"}}',
        '{"external_id": "b", "phone": "nope"}',
        "not json",
        "",
        '{"external_id": "c", "phone": "+33612345603", "timezone": "Asia/Tokyo"}',
        '["a list"]',
        '{"external_id": "d", "phone": "+33612345604", "fistName": "typo"}',
        '{"phone": "+33612345605"}',
        '{"external_id": "a", "phone": "+33612345606", "attributes": {"firstName": "Ana2"}}',
    ]
    result = await _import(client, "\n".join(lines).encode(), NDJSON)
    assert result["imported"] == 3
    assert result["lines"] == 9
    assert [(e["line"], e["field"]) for e in result["errors"]] == [
        (2, "phone"),
        (3, None),
        (6, None),
        (7, "fistName"),
        (8, "external_id"),
    ]
    assert result["error_count"] == 5
    a = (await client.get("/api/v1/profiles/a")).json()
    assert a["phone"] == "+33612345606"  # the later line wins
    assert a["attributes"] == {"firstName": "Ana2"}
    assert (await client.get("/api/v1/profiles/c")).json()["timezone"] == "Asia/Tokyo"
    assert (await client.get("/api/v1/profiles/b")).status_code == 404


async def test_csv_import_with_quotes_bom_and_bad_lines(client: httpx.AsyncClient) -> None:
    content = (
        "\ufeffexternal_id,phone,firstName,city\r\n"
        'x1,+33612345611,"Ana, Maria","Paris"\r\n'
        'x2,+33612345612,"two\nlines ""quoted""",\r\n'
        "x3,bad-phone,Bob,Lyon\r\n"
        "x4,+33612345614\r\n"
        "x5,+33612345615,Zoé,Nice"
    ).encode()
    result = await _import(client, content, CSV)
    assert result["imported"] == 3
    assert [(e["line"], e["field"]) for e in result["errors"]] == [(5, "phone"), (6, None)]
    x2 = (await client.get("/api/v1/profiles/x2")).json()
    assert x2["attributes"] == {"firstName": 'two\nlines "quoted"'}  # empty city left out
    assert (await client.get("/api/v1/profiles/x5")).json()["attributes"]["firstName"] == "Zoé"


async def test_csv_header_problems_are_reported_once(client: httpx.AsyncClient) -> None:
    result = await _import(client, b"id,phone\n1,+33612345678\n2,+33612345679\n", CSV)
    assert result["imported"] == 0
    assert result["error_count"] == 1
    assert "external_id" in result["errors"][0]["message"]


async def test_import_is_streamed_in_batches(client: httpx.AsyncClient) -> None:
    total = IMPORT_BATCH * 2 + 17

    async def chunks() -> AsyncIterator[bytes]:
        # Lines cut at arbitrary places across chunks, as a network would deliver them.
        data = "".join(
            f'{{"external_id": "s{n}", "phone": "+3361{n:07d}"}}\n' for n in range(total)
        ).encode()
        for start in range(0, len(data), 997):
            yield data[start : start + 997]

    result = await _import(client, chunks(), NDJSON)
    assert result == {"imported": total, "lines": total, "error_count": 0, "errors": []}
    listed = (await client.get("/api/v1/profiles", params={"limit": 500})).json()
    assert len(listed["items"]) == 500 and listed["next_cursor"]
    found = (await client.get("/api/v1/profiles", params={"phone": "+33610000007"})).json()
    assert [p["external_id"] for p in found["items"]] == ["s7"]


async def test_reimport_replaces_profiles_in_place_across_batches(
    client: httpx.AsyncClient,
) -> None:
    """The bulk upsert (COPY into a staging table on PostgreSQL, executemany on SQLite): a
    second import of the same ids replaces phone, attributes and time zone, keeps
    ``created_at``, leaves no row of one batch in the next, and stores JSON exactly."""
    total = IMPORT_BATCH + 3
    attributes = {"firstName": "Zoé 日本", "nested": {"list": [1, 2.5, None, True]}, "q": '"\\'}

    def lines(phone_base: int, tz: str | None) -> bytes:
        return "".join(
            json.dumps(
                {
                    "external_id": f"r{n}",
                    "phone": f"+3361{phone_base + n:07d}",
                    "attributes": {**attributes, "n": n},
                    **({"timezone": tz} if tz else {}),
                }
            )
            + "\n"
            for n in range(total)
        ).encode()

    first = await _import(client, lines(0, None), NDJSON)
    assert first["imported"] == total
    before = (await client.get("/api/v1/profiles/r5")).json()
    second = await _import(client, lines(500_000, "Europe/Paris"), NDJSON)
    assert second["imported"] == total
    after = (await client.get("/api/v1/profiles/r5")).json()
    assert after["phone"] == "+33610500005"
    assert after["attributes"] == {**attributes, "n": 5}
    assert after["timezone"] == "Europe/Paris"
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] > before["updated_at"]
    last = (await client.get(f"/api/v1/profiles/r{total - 1}")).json()
    assert last["phone"] == f"+3361{500_000 + total - 1:07d}"
    count = 0
    cursor: str | None = None
    while True:  # every id once: no staging row was upserted twice or left behind
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        listing = await client.get("/api/v1/profiles", params=params)
        assert listing.status_code == 200, listing.text
        page = listing.json()
        count += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert count == total


async def test_import_needs_a_known_content_type(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/profiles/import", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Content-Type"


async def test_viewers_read_but_do_not_write(client: httpx.AsyncClient, services: Services) -> None:
    created = await services.api_keys.create("viewer key", "viewer")
    headers = {"Authorization": f"Bearer {created.key}"}
    await client.put("/api/v1/profiles/v1", json={"phone": "+33612345678"})
    assert (await client.get("/api/v1/profiles/v1", headers=headers)).status_code == 200
    denied = await client.put(
        "/api/v1/profiles/v1", json={"phone": "+33612345678"}, headers=headers
    )
    assert denied.status_code == 403
