from __future__ import annotations

import httpx


async def test_healthz_answers_when_the_database_does(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_the_root_leads_to_the_admin(client: httpx.AsyncClient) -> None:
    """``/`` answered a raw JSON 404; a browser pointed at the server now lands on the admin."""
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/admin"
