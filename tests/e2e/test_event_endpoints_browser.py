"""Channels > Event endpoints in a real Chromium (issue 19): add an endpoint (its secret shown
once), send a test event that the receiver verifies with the ``standardwebhooks`` library, a
refused delivery in the log and sent again under the same webhook-id, a new secret, problems
beside their fields, and the page in French on a phone."""

from __future__ import annotations

from typing import Any

from standardwebhooks import Webhook

from tests.conftest import ADMIN_KEY
from tests.e2e.harness import Site, check_page, shot
from tests.mock_provider import MockProvider, Reply


async def _signed_in(browser: Any, site: Site, width: int = 1280, **options: Any) -> Any:
    context = await browser.new_context(viewport={"width": width, "height": 900}, **options)
    page = await context.new_page()
    await page.goto(f"{site.base}/admin/login")
    await page.locator("#key").fill(ADMIN_KEY)  # (by id: the label is in the page's language)
    await page.locator("#key").press("Enter")
    await page.wait_for_url(f"{site.base}/admin/credentials")
    await page.goto(f"{site.base}/admin/events")
    return page


async def test_an_endpoint_from_the_admin_to_a_verified_test_event(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    page = await _signed_in(browser, site)
    # problems beside their fields: not a URL, no event chosen
    await page.locator("#url").fill("ftp://hooks.example.com/in")
    await page.locator("input[name=all_types]").uncheck()
    await page.locator('form[action="/admin/events/new"] button[type=submit]').click()
    await page.locator("#url-error").wait_for()
    assert await page.locator("#event_types-error").is_visible()

    await page.locator("#url").fill(f"{mock_provider.url}/events")
    await page.locator("input[name=all_types]").check()
    await page.locator("#description").fill("CRM")
    await page.locator('form[action="/admin/events/new"] button[type=submit]').click()
    secret = await page.locator("#created-secret").input_value()
    assert secret.startswith("whsec_")
    await check_page(page)
    await shot(page, "events-created")
    await page.goto(f"{site.base}/admin/events")  # shown once
    assert secret not in await page.content()

    await page.locator('a[href^="/admin/events/ep_"]').first.click()
    await page.locator('form[action$="/test"] button').click()
    await page.locator(".notice.ok").wait_for()
    [posted] = mock_provider.requests
    assert posted.path == "/events"
    event = Webhook(secret).verify(posted.body, posted.headers)
    assert event["type"] == "endpoint.test"
    log = page.locator("#delivery-log")
    assert posted.header("webhook-id") in await log.inner_text()
    assert "HTTP 200" in await log.inner_text()

    # a refusal: failed at once, in the log with the receiver's answer; sent again on demand
    mock_provider.reply(Reply(400, {"error": "unknown tenant"}))
    await page.locator('form[action$="/test"] button').click()
    await page.locator(".notice.bad[role=alert]").wait_for()
    refused = page.locator("#delivery-log tbody tr").first
    assert "unknown tenant" in await refused.inner_text()
    webhook_id = mock_provider.requests[-1].header("webhook-id")
    await refused.locator('form[action$="/replay"] button').click()
    await page.locator(".notice.ok").wait_for()
    again = page.locator(f'#delivery-log tr:has-text("{webhook_id}")')
    assert await again.count() == 1  # the same delivery, pending again under its webhook-id
    assert "HTTP 400" in await again.inner_text()

    # a new secret, shown once, the old one still signing during the overlap
    await page.locator('form[action$="/rotate"] button').click()
    rotated = await page.locator("#rotated-secret").input_value()
    assert rotated.startswith("whsec_") and rotated != secret
    mock_provider.reply(Reply(200, {}))
    await page.locator('form[action$="/test"] button').click()
    await page.locator(".notice.ok").wait_for()
    last = mock_provider.requests[-1]
    assert Webhook(rotated).verify(last.body, last.headers)
    assert Webhook(secret).verify(last.body, last.headers)  # both sign during the overlap
    await check_page(page)
    await shot(page, "event-endpoint-log")


async def test_the_event_endpoints_in_french_on_a_phone(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    page = await _signed_in(browser, site, width=390, locale="fr-FR")
    assert await page.evaluate("() => document.documentElement.lang") == "fr"
    text = await page.locator("main").inner_text()
    assert "Ajouter" in text and "Add an endpoint" not in text
    await page.locator("#url").fill(f"{mock_provider.url}/events")
    await page.locator('form[action="/admin/events/new"] button[type=submit]').click()
    await page.locator("#created-secret").wait_for()
    await check_page(page)
    await page.locator('a[href^="/admin/events/ep_"]').first.click()
    await page.locator('form[action$="/test"] button').click()
    await page.locator(".notice.ok").wait_for()
    assert "Journal" in await page.locator("main").inner_text()
    await check_page(page)
    await shot(page, "event-endpoint-fr-390")
