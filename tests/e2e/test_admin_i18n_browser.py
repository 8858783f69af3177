"""The admin in French and English in a real browser (issue 18): Chromium's locale chooses the
language, the header's switcher changes it (keyboard only) and the choice lasts across pages
and past signing in."""

from __future__ import annotations

import re
from typing import Any

import pytest

from smsbridge.services.message_rows import SendRequest
from tests.conftest import ADMIN_KEY
from tests.e2e.harness import Site, check_page, shot
from tests.mock_provider import MockProvider


async def _lang(page: Any) -> str:
    lang: str = await page.evaluate("() => document.documentElement.lang")
    return lang


async def _one_queued_message(site: Site, mock_provider: MockProvider) -> None:
    credential = await site.services.credentials.create(
        {
            "name": "i18n",
            "provider_url": f"{mock_provider.url}/sms",
            "auth": {"type": "none"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        }
    )
    surface = await site.services.surfaces.create(
        {"name": "i18n", "credential_id": credential.id, "sender": "Acme"}
    )
    await site.services.messages.send(SendRequest(surface.id, "+33612345678", "Bonjour"))


async def test_a_french_browser_sees_french_and_switches_to_english(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    await _one_queued_message(site, mock_provider)
    context = await browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await page.goto(f"{site.base}/admin/login")
    assert await _lang(page) == "fr"
    await page.get_by_role("heading", name="Se connecter").wait_for()
    await check_page(page)
    await page.get_by_label("Clé d\u2019API").fill(ADMIN_KEY)
    await page.get_by_label("Clé d\u2019API").press("Enter")
    await page.wait_for_url("**/admin/credentials")

    await page.goto(f"{site.base}/admin/messages")
    assert await _lang(page) == "fr"
    await page.get_by_role("button", name="Rechercher").wait_for()
    row = page.locator("tbody tr").first
    assert await row.locator('td[data-label="Statut"]').inner_text() == "en file d\u2019attente"
    created = await row.locator('td[data-label="Créé le"]').inner_text()
    assert re.fullmatch(r"\d{1,2} \w+\.? 20\d\d, \d\d:\d\d:\d\d", created), created
    nav = page.get_by_role("navigation", name="Navigation principale")
    assert "Rédiger" in await nav.inner_text()
    switcher = page.get_by_role("group", name="Langue")
    assert await switcher.get_by_role("button", name="Français").get_attribute("aria-pressed") == (
        "true"
    )
    await check_page(page)  # the switcher fits in 390 px
    await shot(page, "i18n-messages-fr")

    # Keyboard only: Tab to the switcher's "English", press Enter.
    english = switcher.get_by_role("button", name="English")
    for _ in range(30):
        await page.keyboard.press("Tab")
        if await english.evaluate("b => b === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the English button")
    await page.keyboard.press("Enter")
    await page.get_by_role("button", name="Search").wait_for()
    assert page.url == f"{site.base}/admin/messages"  # back on the same page
    assert await _lang(page) == "en"
    assert await page.locator('td[data-label="Status"]').first.inner_text() == "queued"

    await page.get_by_role("link", name="Compose").click()  # remembered on the next page
    await page.get_by_role("heading", name="Compose").wait_for()
    assert await _lang(page) == "en"
    await page.goto(f"{site.base}/admin/messages/nothing-here")
    assert await _lang(page) == "en" and "No such message." in await page.content()
    await shot(page, "i18n-after-switch-en")
    await context.close()


async def test_an_english_browser_sees_english_and_can_choose_french_before_signing_in(
    site: Site, browser: Any
) -> None:
    context = await browser.new_context(locale="en-US", viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await page.goto(f"{site.base}/admin/login")
    assert await _lang(page) == "en"
    await page.get_by_role("heading", name="Sign in").wait_for()
    await page.get_by_role("button", name="Français").click()
    await page.get_by_role("heading", name="Se connecter").wait_for()
    assert page.url == f"{site.base}/admin/login" and await _lang(page) == "fr"
    await shot(page, "i18n-login-fr")
    await page.get_by_label("Clé d\u2019API").fill(ADMIN_KEY)
    await page.get_by_role("button", name="Se connecter", exact=True).click()
    await page.wait_for_url("**/admin/credentials")
    await page.goto(f"{site.base}/admin/messages")
    assert await _lang(page) == "fr"  # the choice outlived signing in
    assert "Aucun message ne correspond." in await page.content()
    await context.close()
