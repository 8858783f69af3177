"""The brief's whole journey through the admin, once in English and once in French (a
browser whose language is fr-FR), in a real Chromium against ``serve``'s app with its own
worker and campaign runner: sign in → API credentials (a refused save, then saved) →
validate → surface → profiles import → a number opted out by hand → campaign (audience
counted, sample preview, launch confirmed) → live progress → its report → the reports
index → the messages → compose.

Every screen is checked at 1280 and 390 px (labels, nothing wider than the window, no secret
shown) and photographed at both widths. The photographs go to
``test-artifacts/screenshots/journey/<lang>/``, or to the directory named by
``SMSBRIDGE_DOCS_SCREENSHOTS`` (``docs/img/journey`` to refresh the documentation's:
``SMSBRIDGE_DOCS_SCREENSHOTS=docs/img/journey make test`` or this file alone).

Elements are found by id, form action and link target, never by their words, so one test
drives both languages; the words are checked separately: on each screen, a few phrases in the
page's language, taken from the catalog (and required to differ from the English, so a
missing translation fails here too).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from smsbridge.web.i18n import translator_for
from tests.conftest import ADMIN_KEY
from tests.e2e.harness import TOKEN, Site, check_page, journey_setup
from tests.mock_provider import MockProvider

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(
    os.environ.get("SMSBRIDGE_DOCS_SCREENSHOTS") or ROOT / "test-artifacts/screenshots/journey"
)
WIDTHS = (1280, 390)
BROWSER_LOCALE = {"en": "en-US", "fr": "fr-FR"}


class Screens:
    """Checks and photographs each screen at both widths; checks its words."""

    def __init__(self, page: Any, lang: str) -> None:
        self.page = page
        self.lang = lang
        self._ = translator_for(lang)
        self.taken: list[str] = []

    async def show(self, name: str, *phrases: str) -> None:
        """``phrases``: English msgids of the catalog that the screen shows, in its language."""
        await self.page.wait_for_load_state("load")
        assert await self.page.evaluate("() => document.documentElement.lang") == self.lang
        text = await self.page.locator("body").inner_text()
        for phrase in phrases:
            shown = self._(phrase)
            if self.lang != "en":
                assert shown != phrase, f"{phrase!r} has no {self.lang} translation"
            assert shown in text, (name, shown)
        directory = SHOTS / self.lang
        directory.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            await self.page.set_viewport_size({"width": width, "height": 900})
            await check_page(self.page)
            await self.page.screenshot(path=str(directory / f"{name}-{width}.png"), full_page=True)
        await self.page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        self.taken.append(name)


@pytest.mark.parametrize("lang", ["en", "fr"])
async def test_the_whole_journey_in_each_language(
    live_site: Site, browser: Any, mock_provider: MockProvider, tmp_path: Path, lang: str
) -> None:
    site = live_site
    people = journey_setup(mock_provider, tmp_path)
    context = await browser.new_context(
        viewport={"width": WIDTHS[0], "height": 900}, locale=BROWSER_LOCALE[lang]
    )
    page = await context.new_page()
    screens = Screens(page, lang)
    base = site.base

    await page.goto(f"{base}/admin/login")
    await screens.show("sign-in", "Sign in")
    await page.locator("#key").fill(ADMIN_KEY)
    await page.locator("#key").press("Enter")
    await page.wait_for_url(f"{base}/admin/credentials")
    await screens.show("credentials-empty", "API credentials")

    # API credentials: a refused save (every problem at once), then a good one.
    await page.goto(f"{base}/admin/credentials/new")
    await page.locator("#name").fill("acme-gateway")
    await page.locator("#provider_name").fill("Mock")
    await page.locator("#provider_url").fill(f"{mock_provider.url}/sms")
    await page.locator("#auth_type").select_option("bearer")
    await page.locator("#payload").fill('{"to": "{{toNumber}}",')
    await screens.show("credential-form", "Authentication type", "Header parameters")
    await page.locator("button[name=do][value=save]").click()
    await page.locator("#problems").wait_for()
    await screens.show("credential-form-problems", "Provider payload")
    await page.locator("#auth_token").fill(TOKEN)
    await page.locator("#payload").fill(
        '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}'
    )
    await page.locator("#message_id_path").fill("$.id")
    await page.locator("button[name=do][value=save]").click()
    await page.wait_for_url(f"{base}/admin/credentials?*")
    await screens.show("credentials", "API credentials")
    await page.locator('a[href$="/validate"]').first.click()
    await page.locator("#to").fill("+33612345678")
    await page.locator("main form button[type=submit]").click()
    await page.locator("p.notice.ok").wait_for()
    await screens.show("validate")
    assert [r.header("authorization") for r in mock_provider.requests] == [f"Bearer {TOKEN}"]

    # A surface on those credentials, with link tracking.
    await page.goto(f"{base}/admin/surfaces/new")
    await page.locator("#name").fill("promo")
    await page.locator("#credential_id").select_option(label="acme-gateway")
    await page.locator("#sender").fill("Acme")
    await page.locator("#link_tracking").check()
    await screens.show("surface-form")
    await page.locator("main form button[type=submit]").last.click()
    await page.locator("#hook-inbound, [id^=hook-]").first.wait_for()
    await screens.show("surface-created")
    await page.goto(f"{base}/admin/surfaces")
    await screens.show("surfaces")

    # Profiles: import; opt crm-3 out of Acme by hand.
    await page.goto(f"{base}/admin/profiles")
    await page.locator("#file").set_input_files(str(people))
    await page.locator("#import-form button[type=submit]").click()
    await page.locator(".notice").first.wait_for()
    await screens.show("profiles-imported")
    await page.goto(f"{base}/admin/profiles")
    await screens.show("profiles", "Profiles")
    await page.goto(f"{base}/admin/profiles/crm-3")
    await page.locator("select#consent-sender, input#consent-sender").first.wait_for()
    if await page.locator("select#consent-sender").count():
        await page.locator("select#consent-sender").select_option("Acme")
    else:
        await page.locator("input#consent-sender").fill("Acme")
    await page.locator("#consent-status").select_option("opted_out")
    await page.locator("#consent-note").fill("by phone")
    await page.locator('form[action$="/consent"] button[type=submit]').click()
    await page.locator(".notice").first.wait_for()
    await screens.show("profile-consent")

    # A campaign to every profile: counted, previewed, confirmed, followed to its end.
    await page.goto(f"{base}/admin/campaigns/new")
    await page.locator("#name").fill("spring")
    await page.locator("#surface_id").select_option(label="promo (Acme)")
    await page.locator("#body").fill(
        "Hi {{ profile.firstName }}, spring offers: https://shop.example.com/spring?src=sms."
    )
    await page.locator("#audience_all").check()
    await page.locator("button[name=do][value=count]").click()
    await page.wait_for_load_state()
    await screens.show("campaign-form")
    await page.locator("button[name=do][value=create]").click()
    await page.locator('form[action$="/launch"] button').click()
    confirm = page.locator('form[action$="/launch"] button')
    await confirm.wait_for()
    assert "3" in await confirm.inner_text()  # Cy opted out, Ed shares Ana's number
    await screens.show("campaign-confirm")
    await confirm.click()
    await (
        page.locator("#campaign-status")
        .get_by_text(re.compile(re.escape(screens._("completed")), re.I))
        .wait_for(timeout=20_000)
    )
    await screens.show("campaign-completed")
    await page.locator('a[href$="/report"]').first.click()
    await page.wait_for_url(f"{base}/admin/campaigns/*/report")
    await page.locator("figure, .tiles, ul").first.wait_for()
    await screens.show("campaign-report")
    await page.goto(f"{base}/admin/reports")
    await screens.show("reports", "Reports")

    # Messages, one message's timeline, compose.
    await page.goto(f"{base}/admin/messages")
    await screens.show("messages", "Status", "Number")
    await page.locator('a[href^="/admin/messages/msg_"]').first.click()
    await page.wait_for_url(f"{base}/admin/messages/msg_*")
    await screens.show("message")
    await page.goto(f"{base}/admin/compose")
    await page.locator("#to").fill("+33612345601")
    await page.locator("#body").fill("Your code is 123456")
    await page.locator("button[name=do][value=preview]").click()
    await page.wait_for_load_state()
    await screens.show("compose-preview", "Compose")
    assert len(screens.taken) == 20
    await context.close()
