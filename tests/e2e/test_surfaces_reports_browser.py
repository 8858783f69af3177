"""The API docs offline, the reports' charts and the surfaces' pages, in a real browser
(Debian's Chromium driven by Playwright) against a real server on loopback. Screenshots go to
``test-artifacts/screenshots/``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from smsbridge.domain.messages import MessageStatus
from smsbridge.web.i18n import formatters
from tests.conftest import ADMIN_KEY
from tests.e2e.harness import SHOTS, Site, check_page, shot, sign_in
from tests.mock_provider import MockProvider


async def _offline_page(context: Any, outside: list[str], violations: list[str]) -> Any:
    """A page that can reach this machine only (as on a server without internet access): every
    other request is refused and recorded in ``outside``; CSP violations go to ``violations``."""

    async def only_loopback(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    page = await context.new_page()
    await page.route("**/*", only_loopback)
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page


# --- item 9: /docs offline ---------------------------------------------------------------------


async def test_api_docs_render_offline(site: Site, browser: Any) -> None:
    """``/docs`` lists the API's operations with nothing fetched from outside the server, under
    a Content-Security-Policy that its own scripts do not violate."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    violations: list[str] = []
    page = await _offline_page(context, outside, violations)
    response = await page.goto(f"{site.base}/docs")
    assert response is not None and response.status == 200
    assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
    await page.locator(".opblock").first.wait_for(timeout=15_000)
    paths = await page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/messages" in [p.replace("\u200b", "") for p in paths]
    assert len(paths) > 20
    await page.locator(".opblock").first.locator(".opblock-summary").click()  # it is live
    await page.get_by_role("button", name="Try it out").first.wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "api-docs-offline.png"))  # the first screen only
    assert outside == []
    assert violations == []

    redoc = await page.goto(f"{site.base}/redoc")  # the other docs URL leads here
    assert redoc is not None and page.url == f"{site.base}/docs"
    await context.close()


# --- items 4 and 7: surfaces ------------------------------------------------------------------


async def _credential(site: Site, mock_provider: MockProvider, name: str, url: str = "") -> str:
    created = await site.services.credentials.create(
        {
            "name": name,
            "provider_url": url or f"{mock_provider.url}/sms",
            "auth": {"type": "none"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "response": {"message_id_path": "$.id"},
        }
    )
    return created.id


_OFFERED = """() => [...document.getElementById('fallback_credential_ids').options]
    .filter(o => !o.hidden && !o.disabled).map(o => o.textContent)"""


@pytest.mark.parametrize("width", [1280, 390])
async def test_surface_names_with_spaces_fallbacks_and_delete(
    site: Site, browser: Any, mock_provider: MockProvider, width: int
) -> None:
    site = site
    first = await _credential(site, mock_provider, "Main gateway")
    await _credential(site, mock_provider, "Backup gateway")
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")

    # A new surface: the fallback list never offers the credential chosen as primary.
    await page.goto(f"{site.base}/admin/surfaces/new")
    primary = page.get_by_label("Credential", exact=True)
    chosen = await primary.evaluate("s => s.options[s.selectedIndex].textContent")
    offered = await page.evaluate(_OFFERED)
    assert chosen not in offered and len(offered) == 1
    other = offered[0]
    await primary.select_option(label=other)  # another primary: the list follows
    assert await page.evaluate(_OFFERED) == [chosen]
    await primary.select_option(first)
    assert await page.evaluate(_OFFERED) == ["Backup gateway"]
    await page.get_by_label("Fallback credentials (in order)").select_option(label="Backup gateway")

    # A name with spaces, as credential and campaign names may have.
    await page.get_by_label("Name", exact=True).fill("Acme alerts")
    await page.get_by_label("Sender").fill("Acme")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("heading", name="Webhook URLs for your provider").wait_for()
    assert await page.locator("#name-error").count() == 0
    assert await page.evaluate(_OFFERED) == ["Backup gateway"]  # editing: same rule
    await check_page(page)
    await shot(page, f"surface-spaces-{width}")
    surface = (await site.services.surfaces.list()).items[0]
    assert surface.surface.name == "Acme alerts"
    assert (
        surface.surface.fallback_credential_ids == (surface.surface.fallback_credential_ids[0],)
        and surface.surface.fallback_credential_ids[0] != first
    )

    # Delete: refused while a campaign (a draft is enough) uses it, naming the campaign.
    await site.services.campaigns.create(
        {"name": "Spring sale", "surface_id": surface.id, "body": "Hi!", "audience": {"all": True}}
    )
    await page.goto(f"{site.base}/admin/surfaces")
    await page.get_by_role("link", name="Delete Acme alerts").click()
    await page.get_by_role("heading", name="Delete Acme alerts?").wait_for()
    await check_page(page)
    await page.get_by_role("button", name="Delete").focus()
    await page.keyboard.press("Enter")  # keyboard only
    refusal = page.get_by_role("alert")
    await refusal.wait_for()
    text = await refusal.inner_text()
    assert text.startswith("Not deleted") and "'Spring sale'" in text, text
    assert "Acme alerts" in await page.get_by_role("table").inner_text()  # still there
    await check_page(page)
    await shot(page, f"surface-delete-refused-{width}")

    # An unused surface is deleted; the list says so.
    await site.services.surfaces.create(
        {"name": "Old promo", "credential_id": first, "sender": "Acme"}
    )
    await page.goto(f"{site.base}/admin/surfaces")
    await page.get_by_role("link", name="Delete Old promo").click()
    await page.get_by_role("button", name="Delete").click()
    await page.get_by_role("status").get_by_text("Deleted Old promo").wait_for()
    assert "Old promo" not in await page.get_by_role("table").inner_text()
    assert [v.surface.name for v in (await site.services.surfaces.list()).items] == ["Acme alerts"]
    await context.close()


# --- item 11: report charts, the window, long URLs -------------------------------------------


_BARS = """() => [...document.querySelectorAll('main figure svg')].map(svg => {
    const box = svg.getBoundingClientRect();
    const rects = [...svg.querySelectorAll('rect')];
    const last = rects[rects.length - 1];
    return {
        bars: rects.length,
        right: (last.getBoundingClientRect().right - box.left) / box.width,
        last: last.querySelector('title').textContent,
    };
})"""


@pytest.mark.parametrize("width", [1280, 390])
async def test_surface_report_charts_fill_their_width_and_stop_today(
    site: Site, browser: Any, mock_provider: MockProvider, width: int
) -> None:
    from smsbridge.services.message_rows import SendRequest

    site = site
    credential = await _credential(site, mock_provider, "gateway")
    surface = await site.services.surfaces.create(
        {"name": "Acme promo", "credential_id": credential, "sender": "Acme"}
    )
    for to in ("+33612345678", "+33612345679"):
        await site.services.messages.send(SendRequest(surface.id, to, "Spring offers"))
    await site.services.new_worker().drain()
    stored = [m["status"] for m in (await site.services.messages.list()).items]
    assert stored == [MessageStatus.SENT, MessageStatus.SENT]
    today = datetime.now(UTC).date()
    shown_today = formatters("en")["date"](today)  # a day's bucket, as the page writes it

    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")
    await page.get_by_role("link", name="Reports", exact=True).click()
    await page.get_by_role("link", name="Acme promo").click()
    await page.get_by_role("heading", name="Over time").wait_for()
    charts = await page.evaluate(_BARS)
    assert len(charts) == 3
    for chart in charts:
        assert chart["bars"] == 7  # the last 7 days, today included, and no day after
        assert chart["last"].startswith(f"{shown_today} UTC:"), chart
    assert charts[0]["right"] > 0.9, charts  # today's bar (2 sent) at the right end
    axis = await page.locator(".axis").first.inner_text()
    assert axis.strip().endswith(f"{shown_today} UTC"), axis
    await check_page(page)
    await shot(page, f"surface-report-{width}")

    tomorrow = today + timedelta(days=1)
    await page.goto(f"{page.url.split('?')[0]}?from={today - timedelta(days=4)}&to={tomorrow}")
    assert "after today" in await page.get_by_role("alert").inner_text()
    assert await page.get_by_label("To (UTC date, included)").input_value() == today.isoformat()
    charts = await page.evaluate(_BARS)
    assert all(c["bars"] == 5 and c["last"].startswith(shown_today) for c in charts), charts
    await context.close()


async def test_surfaces_and_a_surface_report_in_french_on_a_phone(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    """A French browser (Chromium's locale) sees the surfaces list, a surface's form and its
    report in French, with the locale's dates and rates, and nothing wider than 390 px."""
    from smsbridge.services.message_rows import SendRequest

    site = site
    credential = await _credential(site, mock_provider, "Passerelle principale")
    surface = await site.services.surfaces.create(
        {"name": "Alertes Acme", "credential_id": credential, "sender": "Acme"}
    )
    await site.services.messages.send(SendRequest(surface.id, "+33612345678", "Bonjour"))
    await site.services.new_worker().drain()
    fr = formatters("fr")
    today = datetime.now(UTC).date()

    context = await browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await page.goto(f"{site.base}/admin/login")
    await page.get_by_label("Clé d\u2019API").fill(ADMIN_KEY)
    await page.get_by_label("Clé d\u2019API").press("Enter")
    await page.wait_for_url(f"{site.base}/admin/credentials")

    # The list.
    await page.get_by_role("link", name="Canaux", exact=True).click()
    assert await page.evaluate("() => document.documentElement.lang") == "fr"
    assert await page.locator("h1").inner_text() == "Canaux"
    await page.get_by_role("link", name="Créer un canal").wait_for()
    row = page.locator("tbody tr").first
    assert await row.locator('td[data-label="Identifiant d\u2019API"]').inner_text() == (
        "Passerelle principale"
    )
    assert await row.locator('td[data-label="Type"]').inner_text() == "Transactionnel"
    assert await row.locator('td[data-label="Suivi des liens"]').inner_text() == "désactivé"
    await check_page(page)
    await shot(page, "surfaces-fr-390")

    # The form: its webhook URLs (not ready: the credential has no mappings), a refusal counted.
    await page.get_by_role("link", name="Modifier Alertes Acme").click()
    assert await page.locator("h1").inner_text() == "Modifier un canal"
    await page.get_by_role("heading", name="URL de webhook pour votre fournisseur").wait_for()
    assert await page.locator("#hook-inbound-title").inner_text() == (
        "URL du webhook entrant\u00a0: pas encore prête"
    )
    gap = await page.locator("#hook-inbound-gap").inner_text()
    assert gap.startswith("L\u2019identifiant d\u2019API «\u00a0Passerelle principale\u00a0»"), gap
    await page.get_by_label("Identifiants d\u2019API de secours (dans l\u2019ordre)").wait_for()
    await page.get_by_label("Expéditeur").fill("pas un expéditeur!!")
    await page.get_by_role("button", name="Enregistrer").click()
    await page.locator("#sender-error").wait_for()
    alert = await page.get_by_role("alert").inner_text()
    assert alert == "Il y a 1 problème à corriger ci-dessous.", alert  # singular
    await check_page(page)
    await shot(page, "surface-form-fr-390")

    # The report: French words, dates and rates; a window past today is said so, in French.
    await page.goto(f"{site.base}/admin/reports")
    await page.get_by_role("link", name="Alertes Acme").click()
    heading = await page.locator("h1").inner_text()
    assert heading == "Rapport\u00a0: canal Alertes Acme (Acme)", heading
    await page.get_by_role("heading", name="Évolution").wait_for()
    tiles = await page.get_by_role("list", name="Chiffres clés").inner_text()
    assert "1\nenvoyés" in tiles and "0 (0\u00a0%)\nremis" in tiles, tiles
    axis = await page.locator(".axis").first.inner_text()
    assert axis.strip().endswith(f"{fr['date'](today)} UTC"), axis  # e.g. 5 janv. 2026 UTC
    await check_page(page)
    await shot(page, "surface-report-fr-390")
    tomorrow = today + timedelta(days=1)
    await page.goto(f"{page.url.split('?')[0]}?from={today - timedelta(days=2)}&to={tomorrow}")
    said = await page.get_by_role("alert").inner_text()
    first, last = fr["date"](today - timedelta(days=2)), fr["date"](today)
    assert said.startswith("Au\u00a0: après aujourd\u2019hui\u202f;"), said
    assert said.endswith(f"Affichage du {first} au {last}."), said
    assert await page.get_by_label("Au (date UTC, incluse)").input_value() == today.isoformat()
    await check_page(page)
    await context.close()


async def test_a_long_url_wraps_without_breaking_headings(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    long_url = f"{mock_provider.url}/v1/accounts/" + "acme-marketing-eu-west-1/" * 12 + "sms"
    await _credential(site, mock_provider, "Long one", url=long_url)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")
    lines = await page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('th')].map(th => {
            const range = document.createRange();
            range.selectNodeContents(th);
            const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
            return [th.textContent, tops.size];
        }))"""
    )
    assert lines["Authentication"] == 1, lines  # not "Authenticatio" / "n"
    for heading, count in lines.items():  # a heading wraps between its words only
        assert count <= len(heading.split()), lines
    url_cell = page.locator('td[data-label="URL"]')
    assert (await url_cell.bounding_box())["width"] < 1000  # the URL wraps in its cell
    await check_page(page)
    await shot(page, "credentials-long-url")
    await context.close()
