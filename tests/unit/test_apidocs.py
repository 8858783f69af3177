"""``/docs`` without a CDN (issue 18, item 9): the page only names this server's files, they
ship in the package, and its policy allows exactly its own inline script."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from smsbridge.web import apidocs
from smsbridge.web.shell import HERE, STATIC


async def _get(path: str) -> httpx.Response:
    app = FastAPI(docs_url=None, redoc_url=None)
    apidocs.install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_the_docs_page_loads_nothing_from_elsewhere() -> None:
    page = await _get("/docs")
    assert page.status_code == 200
    assert re.findall(r"https?://", page.text) == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 3 and all(a.startswith(f"{apidocs.ASSETS}/") for a in assets)
    # vendored in the package (hatch ships every file under src/smsbridge), with the license
    assert _missing([*assets, f"{apidocs.ASSETS}/LICENSE", f"{apidocs.ASSETS}/NOTICE"]) == []


def _missing(urls: list[str]) -> list[str]:
    return [u for u in urls if not (HERE / "static" / u.removeprefix(f"{STATIC}/")).is_file()]


async def test_the_policy_allows_the_inline_script_by_its_hash_only() -> None:
    page = await _get("/docs")
    policy = page.headers["content-security-policy"]
    script_src = next(p for p in policy.split("; ") if p.startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert script_src.split()[2:] == apidocs.script_hashes(page.text) != []
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_redoc_leads_to_docs() -> None:
    answer = await _get("/redoc")
    assert answer.status_code == 307 and answer.headers["location"] == "/docs"
