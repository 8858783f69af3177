"""The web admin in a real browser (Debian's Chromium driven by Playwright), against a real
server on loopback and the loopback mock provider. Screenshots of each screen go to
``test-artifacts/screenshots/``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.harness import (
    HEADER_SECRET,
    TOKEN,
    Site,
    check_page,
    journey_setup,
    shot,
    sign_in,
)
from tests.mock_provider import MockProvider, Recorded, Reply


@pytest.mark.parametrize("width", [1280, 390])
async def test_credentials_journey(
    site: Site, browser: Any, mock_provider: MockProvider, width: int
) -> None:
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")
    await shot(page, f"credentials-empty-{width}")
    await check_page(page)

    await page.get_by_role("link", name="Create API credentials").click()
    await page.get_by_label("Name", exact=True).fill("mock-provider")
    await page.get_by_label("Provider name").fill("Mock")
    await page.get_by_label("Provider URL").fill(f"{mock_provider.url}/sms")
    await page.get_by_label("Authentication type").select_option("bearer")
    await page.get_by_label("API token", exact=True).fill(TOKEN)
    await page.locator("#header_label_0").fill("X-Api-Secret")
    await page.locator("#header_type_0").select_option("secret")
    await page.locator("#header_value_0").fill(HEADER_SECRET)
    await page.get_by_role("button", name="Add a header row").click()  # a round trip
    await page.locator("#header_label_1").wait_for()
    await page.get_by_label("Provider payload (JSON)").fill('{"to": "{{toNumber}}", "text": "hi"}')
    await page.get_by_role("button", name="Save").click()
    error = page.locator("#payload-error")
    await error.wait_for()
    assert "{{fromNumber}}" in (await error.inner_text()) or "{{message}}" in (
        await error.inner_text()
    )
    # what was typed into the secret inputs is kept (sealed), never shown back
    assert await page.locator("#auth_token-kept").is_visible()
    assert await page.locator("#header_value_0-kept").count() == 1
    assert await page.locator("#auth_token").input_value() == ""
    await shot(page, f"credential-form-error-{width}")
    await check_page(page)

    await page.get_by_label("Provider payload (JSON)").fill(
        '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}'
    )
    await page.get_by_label("Provider message id in the answer (JSONPath)").fill("$.id")
    await page.get_by_role("button", name="Preview the request").click()
    preview = page.locator("pre")
    await preview.wait_for()
    assert "Bearer ****" in await preview.inner_text()
    await check_page(page)
    await page.get_by_role("button", name="Save").click()  # no secret typed again
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    assert "mock-provider" in await page.content()
    await shot(page, f"credentials-list-{width}")
    await check_page(page)

    await page.get_by_role("link", name="Validate connection").click()
    await page.get_by_label("Send a test message to").fill("+33612345678")
    await page.get_by_role("button", name="Send test message").click()
    await page.get_by_text("Connection works").wait_for()
    assert len(mock_provider.requests) == 1
    assert mock_provider.requests[0].header("authorization") == f"Bearer {TOKEN}"
    assert mock_provider.requests[0].header("x-api-secret") == HEADER_SECRET
    await shot(page, f"validate-{width}")
    await check_page(page)

    credential_id = (await site.services.credentials.list()).items[0].id
    await site.services.surfaces.create(
        {"name": f"uses-it-{width}", "credential_id": credential_id, "sender": "Acme"}
    )
    await page.goto(f"{site.base}/admin/credentials")
    await page.get_by_role("link", name="Delete mock-provider").click()
    await page.get_by_role("button", name="Delete").click()
    await page.get_by_text("Not deleted").wait_for()
    assert f"'uses-it-{width}'" in (await page.locator(".notice").inner_text())  # named
    await shot(page, f"delete-refused-{width}")

    await page.goto(f"{site.base}/admin/credentials")
    await page.get_by_role("link", name="Edit mock-provider").click()  # from the list
    await page.wait_for_url(f"{site.base}/admin/credentials/{credential_id}")
    await page.get_by_label("Provider name").fill("Mock renamed")
    await page.get_by_role("button", name="Save").click()  # token left empty: kept
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    stored = await site.services.credentials.load(credential_id)
    assert stored.auth.token == TOKEN
    assert (
        "set (…" in await (await page.goto(f"{site.base}/admin/credentials/{credential_id}")).text()
    )
    await context.close()


async def test_viewer_cannot_see_credentials_and_csrf_is_required(site: Site, browser: Any) -> None:
    viewer = await site.services.api_keys.create("viewer key", "viewer")
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, site.base, viewer.key)
    await page.wait_for_url(f"{site.base}/admin/messages")
    response = await page.goto(f"{site.base}/admin/credentials")
    assert response is not None and response.status == 403
    assert "Not allowed" in await page.content()
    await shot(page, "viewer-refused")
    cookies = await context.cookies()
    session = next(c for c in cookies if c["name"] == "smsbridge_admin")
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    forged = await page.request.post(f"{site.base}/admin/logout", form={"csrf": "wrong"})
    assert forged.status == 403
    await context.close()

    wrong = await browser.new_context()
    page = await wrong.new_page()
    await sign_in(page, site.base, "not-a-key")
    await page.get_by_text("This API key is not valid.").wait_for()
    await wrong.close()


async def test_surfaces_screens(site: Site, browser: Any, mock_provider: MockProvider) -> None:
    credential = await site.services.credentials.create(
        {
            "name": "primary",
            "provider_url": f"{mock_provider.url}/sms",
            "auth": {"type": "bearer", "token": TOKEN},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "inbound": {"from_path": "$.from", "text_path": "$.text"},
            "delivery_reports": {
                "message_id_path": "$.id",
                "status_path": "$.status",
                "status_map": {"DELIVRD": "delivered"},
            },
        }
    )
    context = await browser.new_context(viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")
    await page.get_by_role("link", name="Surfaces").click()
    await page.get_by_role("link", name="Create a surface").click()
    await page.get_by_label("Name", exact=True).fill("alerts")
    await page.get_by_label("Credential", exact=True).select_option(credential.id)
    await page.get_by_label("Sender").fill("not a sender!!")
    await page.get_by_role("button", name="Save").click()
    await page.locator("#sender-error").wait_for()
    await shot(page, "surface-form-error")
    await check_page(page)

    await page.get_by_label("Sender").fill("Acme")
    await page.get_by_label("Quiet hours from (HH:MM)").fill("9pm")
    await page.get_by_label("until (HH:MM)").fill("08:00")
    await page.get_by_role("button", name="Save").click()
    await page.locator("#quiet_hours-start-error").wait_for()
    await page.get_by_label("Quiet hours from (HH:MM)").fill("21:00")
    await page.get_by_label("Zone when the number has several").fill("Europe/Paris")
    await page.get_by_label("At most (messages per number)").fill("3")
    await page.get_by_label("in any window of (hours)").fill("24")
    await page.get_by_label("Shorten links and count clicks").check()
    await page.get_by_label("Opt-out keywords (comma-separated)").fill("STOP, ARRET")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("heading", name="Webhook URLs for your provider").wait_for()
    assert "Created alerts" in await page.get_by_role("status").inner_text()  # said so
    inbound = await page.get_by_role("textbox", name="Inbound webhook URL").input_value()
    assert inbound.startswith(f"{site.base}/hooks/inbound/")
    await page.get_by_role("button", name="Copy the inbound webhook url").click()
    await shot(page, "surface-edit")
    await check_page(page)

    surface = (await site.services.surfaces.list()).items[0]
    assert surface.surface.keywords["opt_out"] == ("STOP", "ARRET")
    assert surface.surface.link_tracking.enabled is True
    assert surface.surface.quiet_hours is not None
    assert surface.surface.quiet_hours.default_timezone == "Europe/Paris"
    assert surface.surface.frequency_cap is not None
    assert surface.surface.frequency_cap.max_messages == 3
    await page.goto(f"{site.base}/admin/surfaces")
    assert "alerts" in await page.content()
    await shot(page, "surfaces-list")
    await context.close()


async def test_message_log_and_timeline(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    from smsbridge.services.messages import SendRequest

    credential = await site.services.credentials.create(
        {
            "name": "log",
            "provider_url": f"{mock_provider.url}/sms",
            "auth": {"type": "none"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "response": {"message_id_path": "$.id"},
        }
    )
    surface = await site.services.surfaces.create(
        {"name": "log", "credential_id": credential.id, "sender": "Acme"}
    )
    for to in ("+33612345678", "+33612345679"):
        await site.services.messages.send(SendRequest(surface.id, to, f"Hello {to[-2:]}"))
    await site.services.new_worker().drain()
    viewer = await site.services.api_keys.create("reader", "viewer")
    context = await browser.new_context(viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, viewer.key)
    await page.wait_for_url(f"{site.base}/admin/messages")
    assert "Hello 78" in await page.content() and "Hello 79" in await page.content()
    await check_page(page)
    await shot(page, "messages")
    await page.get_by_label("Number").fill("+33612345679")
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url("**/admin/messages?*")
    content = await page.content()
    assert "Hello 79" in content and "Hello 78" not in content
    await page.locator("table a").first.click()
    await page.get_by_role("heading", name="Timeline").wait_for()
    timeline = await page.locator("ol").inner_text()
    assert "queued" in timeline and "attempt" in timeline and "sent" in timeline
    await shot(page, "message-timeline")
    bad = await page.goto(f"{site.base}/admin/messages?to=12")
    assert bad is not None and "to:" in await page.content()
    await context.close()


async def test_profiles_import_search_and_consent(site: Site, browser: Any, tmp_path: Path) -> None:
    from smsbridge.services.consent import ConsentStatus

    people = tmp_path / "people.csv"
    people.write_text(
        "external_id,phone,firstName\n"
        "crm-1,+33612345601,Ana\n"
        "crm-2,+33612345602,Bo\n"
        "crm-3,not-a-phone,Cy\n"
        "crm-4,+33612345604,Di\n"
    )
    await site.services.consent.change(
        "+33612345602", sender="Acme", status=ConsentStatus.OPTED_OUT, source="admin", actor="t"
    )
    sender = await site.services.api_keys.create("marketer", "sender")
    context = await browser.new_context(viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, sender.key)
    await page.wait_for_url(f"{site.base}/admin/messages")
    await page.get_by_role("link", name="Profiles").click()
    await check_page(page)
    await page.get_by_label("File (.csv or .ndjson)").set_input_files(str(people))
    await page.get_by_role("button", name="Import").click()
    await page.get_by_role("heading", name="Import finished").wait_for()
    summary = await page.locator(".notice").inner_text()
    assert "3 profile(s) imported from 5 line(s); 1 error(s)" in summary  # header included
    assert "not-a-phone" in await page.content()
    assert await page.locator("#progress").count() == 0  # the result page replaced the form
    await shot(page, "profiles-import")

    await page.goto(f"{site.base}/admin/profiles")
    await page.get_by_label("Find by phone number or external id").fill("+33612345602")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name="crm-2").click()
    await page.get_by_role("heading", name="Consent").wait_for()
    assert "Opted out of Acme" in await page.locator("main ul").inner_text()
    assert await page.get_by_role("button", name="Record").count() == 0  # consent: admins only
    forged = await page.request.post(
        f"{site.base}/admin/profiles/crm-2/consent",
        form={"sender": "Acme", "status": "opted_in", "csrf": "x"},
    )
    assert forged.status == 403
    await check_page(page)
    await shot(page, "profile-detail")
    await context.close()


async def test_compose_live_preview_and_send(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    credential = await site.services.credentials.create(
        {
            "name": "compose",
            "provider_url": f"{mock_provider.url}/sms",
            "auth": {"type": "none"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        }
    )
    await site.services.surfaces.create(
        {"name": "compose", "credential_id": credential.id, "sender": "Acme"}
    )
    await site.services.profiles.put(
        "ana", {"phone": "+33612345678", "attributes": {"firstName": "Ana"}}
    )
    sender = await site.services.api_keys.create("writer", "sender")
    context = await browser.new_context(viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, sender.key)
    await page.wait_for_url(f"{site.base}/admin/messages")
    await page.get_by_role("link", name="Compose").click()
    await check_page(page)
    await page.get_by_label("…or a profile (external id), to personalize").fill("ana")
    await page.get_by_label("Message").fill("Hi {{ profile.firstName }} 😀 {{ promo }}")
    preview = page.locator("#preview")
    await preview.get_by_text("UCS-2").wait_for()  # htmx swapped the live preview in
    assert "Hi Ana 😀" in await preview.locator("pre").inner_text()
    assert await preview.locator("mark").first.inner_text() == "😀"
    assert "promo" in await preview.inner_text()  # reported as undefined
    await shot(page, "compose-preview")
    await page.get_by_role("button", name="Send").click()
    await page.get_by_role("heading", name="Timeline").wait_for()
    assert "Hi Ana 😀" in await page.content()
    await shot(page, "compose-sent")
    await context.close()


async def test_campaign_create_launch_and_live_progress(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    credential = await site.services.credentials.create(
        {
            "name": "campaigns",
            "provider_url": f"{mock_provider.url}/sms",
            "auth": {"type": "none"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        }
    )
    await site.services.surfaces.create(
        {"name": "promo", "credential_id": credential.id, "sender": "Acme"}
    )
    for n, country in enumerate(("FR", "FR", "BE")):
        await site.services.profiles.put(
            f"p{n}",
            {"phone": f"+3361234567{n}", "attributes": {"firstName": f"N{n}", "country": country}},
        )
    sender = await site.services.api_keys.create("marketer", "sender")
    context = await browser.new_context(viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, sender.key)
    await page.wait_for_url(f"{site.base}/admin/messages")
    await page.get_by_role("link", name="Campaigns").click()
    await page.get_by_role("link", name="Create a campaign").click()
    await check_page(page)
    await page.get_by_label("Name", exact=True).fill("spring")
    await page.get_by_label("Message", exact=True).fill("Hi {{ profile.firstName }}")
    await page.get_by_label("Profiles whose attributes match").check()
    await page.get_by_label("Attribute filters, one per line").fill("country=FR")
    await page.get_by_role("button", name="Create (draft)").click()
    await page.get_by_role("button", name="Launch").click()
    await page.get_by_role("button", name="Yes, send to 2 recipients").click()
    await page.locator("#campaign-status").get_by_text("running").wait_for()

    runner = site.services.new_campaign_runner()
    await runner.run_once()
    await site.services.new_worker().drain()
    await runner.run_once()
    await page.locator("#campaign-status").get_by_text("completed").wait_for()  # live update
    assert await page.locator('td[data-label="Audience"]').inner_text() == "2"
    assert await page.locator('td[data-label="Sent"]').inner_text() == "2"
    await check_page(page)
    await shot(page, "campaign-completed")
    sent = sorted(r.body for r in mock_provider.requests)
    assert len(sent) == 2 and all(b"Hi N" in body for body in sent)

    await page.get_by_role("link", name="Report", exact=True).click()
    tiles = await page.get_by_role("list", name="Key figures").inner_text()
    assert "2\ntargeted" in tiles and "2\nsent" in tiles
    assert await page.locator("svg rect").count() >= 3  # one series of bars per chart
    await check_page(page)
    await shot(page, "report")
    csv_url = await page.get_by_role("link", name="Download the CSV").get_attribute("href")
    download = await page.request.get(f"{site.base}{csv_url}")
    assert download.status == 200
    rows = (await download.text()).strip().splitlines()
    assert rows[0].startswith("id,to,status") and len(rows) == 3
    await context.close()


async def test_whole_journey_from_sign_in_to_report(
    live_site: Site, browser: Any, mock_provider: MockProvider, tmp_path: Path
) -> None:
    """Everything through the pages, with the server's own worker and campaign runner: sign in →
    credentials pointing at the mock provider → validate → surface → import → opt one number out
    by hand → campaign → launch → live progress → a click → the report's numbers."""
    site = live_site
    people = journey_setup(mock_provider, tmp_path)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")

    # API credentials pointing at the loopback mock provider, then "Validate connection".
    await page.get_by_role("link", name="Create API credentials").click()
    await page.get_by_label("Name", exact=True).fill("acme-gateway")
    await page.get_by_label("Provider name").fill("Mock")
    await page.get_by_label("Provider URL").fill(f"{mock_provider.url}/sms")
    await page.get_by_label("Authentication type").select_option("bearer")
    await page.get_by_label("API token", exact=True).fill(TOKEN)
    await page.get_by_label("Provider payload (JSON)").fill(
        '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}'
    )
    await page.get_by_label("Provider message id in the answer (JSONPath)").fill("$.id")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    await page.get_by_role("link", name="Validate connection").click()
    await page.get_by_label("Send a test message to").fill("+33612345678")
    await page.get_by_role("button", name="Send test message").click()
    await page.get_by_text("Connection works").wait_for()
    assert [r.header("authorization") for r in mock_provider.requests] == [f"Bearer {TOKEN}"]

    # A surface on those credentials, with link tracking.
    await page.get_by_role("link", name="Surfaces").click()
    await page.get_by_role("link", name="Create a surface").click()
    await page.get_by_label("Name", exact=True).fill("promo")
    await page.get_by_label("Credential", exact=True).select_option(label="acme-gateway")
    await page.get_by_label("Sender").fill("Acme")
    await page.get_by_label("Shorten links and count clicks").check()
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("heading", name="Webhook URLs for your provider").wait_for()

    # Profiles: import, then opt crm-3 out of Acme by hand.
    await page.get_by_role("link", name="Profiles").click()
    await page.get_by_label("File (.csv or .ndjson)").set_input_files(str(people))
    await page.get_by_role("button", name="Import").click()
    await page.get_by_role("heading", name="Import finished").wait_for()
    assert (
        "5 profile(s) imported from 7 line(s); 1 error(s)"
        in await page.locator(".notice").inner_text()
    )
    await page.goto(f"{site.base}/admin/profiles?q=crm-3")
    await page.get_by_role("link", name="crm-3").click()
    await page.get_by_label("Sender").select_option("Acme")
    await page.get_by_label("Change", exact=True).select_option("opted_out")
    await page.get_by_label("Note (optional)").fill("asked by phone")
    await page.get_by_role("button", name="Record").click()
    await page.get_by_text("+33612345603 opted out of Acme.").wait_for()
    assert "Opted out of Acme" in await page.locator("main ul").inner_text()
    await shot(page, "journey-consent")

    # A campaign to everyone, launched, followed live until it completes.
    await page.get_by_role("link", name="Campaigns").click()
    await page.get_by_role("link", name="Create a campaign").click()
    await page.get_by_label("Name", exact=True).fill("spring")
    await page.get_by_label("Surface").select_option(label="promo (Acme)")
    await page.get_by_label("Message", exact=True).fill(
        "Hi {{ profile.firstName }}, spring offers: https://shop.example.com/spring?src=sms."
    )
    await page.get_by_label("Every profile").check()
    await page.get_by_role("button", name="Create (draft)").click()
    await page.get_by_role("button", name="Launch").click()
    await page.get_by_role("button", name="Yes, send to 3 recipients").click()  # Cy out, Ed dup
    await page.locator("#campaign-status").get_by_text("completed").wait_for(timeout=20_000)
    assert await page.get_by_role("button", name="Cancel the campaign").count() == 0
    assert await page.locator('td[data-label="Audience"]').inner_text() == "5"
    assert await page.locator('td[data-label="Sent"]').inner_text() == "2"
    assert await page.locator('td[data-label="Failed"]').inner_text() == "1"
    await shot(page, "journey-campaign")

    # The provider saw exactly the two accepted messages and the refused one (after the test).
    campaign_requests = mock_provider.requests[1:]
    texts = sorted(json.loads(r.body)["text"] for r in campaign_requests)
    assert len(texts) == 3
    assert [t.split(",")[0] for t in texts] == ["Hi Ana", "Hi Bo", "Hi Di"]  # Ed: duplicate
    ana = texts[0]
    link = re.search(rf"{re.escape(site.base)}/l/[0-9A-Za-z]{{7,}}", ana)
    assert link is not None and ana.endswith(".")  # the sentence's dot stays outside the link
    phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"
    for _ in range(2):  # two clicks by one recipient: 2 clicks, 1 unique
        followed = await page.request.get(
            link.group(0), max_redirects=0, headers={"User-Agent": phone}
        )
        assert followed.status == 302
        assert followed.headers["location"] == "https://shop.example.com/spring?src=sms"

    # The report page.
    await page.get_by_role("link", name="Report", exact=True).click()
    tiles = await page.get_by_role("list", name="Key figures").inner_text()
    for figure in (
        "5\ntargeted",
        "2\nsent",
        "1\nerrors",
        "2\nexcluded",
        "2\nclicks",
        "1 (50%)\nunique clicks",
    ):
        assert figure in tiles, (figure, tiles)
    reasons = await page.locator("main .row").inner_text()
    assert "opted_out: 1" in reasons and "duplicate" in reasons and "Errors (1)" in reasons
    by_credential = await page.get_by_role("table", name="Messages by the credential").inner_text()
    assert "acme-gateway\t2\t1" in by_credential
    await check_page(page)
    await shot(page, "journey-report")

    # The surface's report (last 7 days) counts the campaign and the validation message.
    await page.get_by_role("link", name="Reports", exact=True).click()
    await page.get_by_role("link", name="promo").click()
    tiles = await page.get_by_role("list", name="Key figures").inner_text()
    assert "5\ntargeted" in tiles and "2\nclicks" in tiles  # the test send has no surface
    await check_page(page)
    await shot(page, "journey-surface-report")
    await page.goto(f"{page.url.split('?')[0]}?from=yesterday&to=2026-13-01")
    problems = await page.get_by_role("alert").inner_text()
    assert "from: not a date" in problems and "to: not a date" in problems
    await context.close()


async def test_keyboard_alone_reaches_and_submits_a_form(site: Site, browser: Any) -> None:
    """Tab order reaches every field and the Save button; Enter submits; focus is visible."""
    context = await browser.new_context(viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")
    await page.goto(f"{site.base}/admin/surfaces/new")
    reached: list[str] = []
    for _ in range(80):
        await page.keyboard.press("Tab")
        reached.append(
            await page.evaluate(
                "() => { const e = document.activeElement;"
                " return (e.labels && e.labels[0] ? e.labels[0].innerText : e.innerText) || ''; }"
            )
        )
        if reached[-1].strip() == "Save":
            break
    assert reached[-1].strip() == "Save", reached
    assert any(label.startswith("Name") for label in reached)
    assert any(label.startswith("Sender") for label in reached)
    outline = await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus ring is drawn
    await page.keyboard.press("Enter")  # empty required fields: the browser stops and says so
    assert await page.evaluate("() => document.activeElement.id") == "name"
    assert await page.evaluate("() => document.getElementById('name').validity.valueMissing")
    await page.keyboard.type("alerts")
    for _ in range(3):  # credential, fallbacks (none), sender
        await page.keyboard.press("Tab")
        if await page.evaluate("() => document.activeElement.id") == "sender":
            break
    await page.keyboard.type("not a sender!!")
    await page.keyboard.press("Enter")
    await page.locator("#sender-error").wait_for()  # the server's inline error
    await context.close()


async def test_oauth2_and_hmac_credentials_through_the_form(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    secret = "cs-browser-oauth-5e4d3c"

    def provider(request: Recorded) -> Reply:
        if request.path == "/token":
            return Reply(200, {"access_token": "at-browser-1", "expires_in": 600})
        ok = request.header("authorization") == "Bearer at-browser-1"
        return Reply(200 if ok else 401, {"id": "oauth-ok"})

    mock_provider.responder = provider
    context = await browser.new_context(viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")
    await page.get_by_role("link", name="Create API credentials").click()
    await page.get_by_label("Name", exact=True).fill("oauth-gw")
    await page.get_by_label("Provider URL").fill(f"{mock_provider.url}/sms")
    await page.get_by_label("Authentication type").select_option("oauth2_client_credentials")
    await page.get_by_label("Token URL", exact=True).fill(f"{mock_provider.url}/token")
    await page.get_by_label("Client id").fill("client-9")
    await page.get_by_label("Provider payload (JSON)").fill(
        '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}'
    )
    await page.get_by_role("button", name="Save").click()
    await page.locator("#auth-client_secret-error").wait_for()  # the secret is required
    await page.get_by_label("Client secret").fill(secret)
    await page.get_by_role("button", name="Preview the request").click()
    assert "Bearer ****(token from the OAuth2 token URL)" in await page.locator("pre").inner_text()
    await page.get_by_label("Client secret").fill(secret)
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    await page.get_by_role("link", name="Validate connection").click()
    await page.get_by_label("Send a test message to").fill("+33612345678")
    await page.get_by_role("button", name="Send test message").click()
    await page.get_by_text("Connection works").wait_for()
    assert [r.path for r in mock_provider.requests] == ["/token", "/sms"]
    assert secret not in await page.content()
    await shot(page, "credential-oauth2-validated")

    credential_id = (await site.services.credentials.list()).items[0].id
    await page.goto(f"{site.base}/admin/credentials/{credential_id}")
    assert "set (…" in await page.content() and secret not in await page.content()
    await page.get_by_label("Authentication type").select_option("hmac")
    await page.get_by_label("Signing secret", exact=True).fill("hmac-browser-secret-77")
    await page.get_by_label("Signature prefix (optional, e.g. sha256=)").fill("sha256=")
    await page.get_by_role("button", name="Preview the request").click()
    assert "sha256=****(HMAC-sha256)" in await page.locator("pre").inner_text()
    await check_page(page)
    await shot(page, "credential-hmac-preview")
    await page.get_by_label("Signing secret", exact=True).fill("hmac-browser-secret-77")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    stored = await site.services.credentials.load(credential_id)
    assert stored.auth.type.value == "hmac" and stored.auth.secret == "hmac-browser-secret-77"
    assert stored.auth.signature_prefix == "sha256="
    await context.close()


async def test_admin_refuses_framing_and_its_policy_blocks_nothing_of_its_own(
    site: Site, browser: Any
) -> None:
    """Another site cannot frame the admin (clickjacking); the admin's own pages, scripts
    included, run under their Content-Security-Policy without a single violation."""
    context = await browser.new_context()
    page = await context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")
    for path in ("surfaces/new", "profiles", "compose", "campaigns/new", "messages"):
        await page.goto(f"{site.base}/admin/{path}")
        await page.wait_for_load_state("networkidle")
    assert await page.evaluate("() => typeof htmx") == "object"  # the vendored script ran
    assert violations == []

    framing = await context.new_page()
    refused: list[str] = []
    framing.on("console", lambda m: refused.append(m.text))
    await framing.set_content(f'<iframe src="{site.base}/admin/login"></iframe>')
    await framing.wait_for_timeout(500)
    assert await framing.frame_locator("iframe").get_by_label("API key").count() == 0
    assert any("frame-ancestors" in text for text in refused), refused
    await context.close()


async def test_webhook_mappings_and_the_sample_check_in_the_form(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")
    await page.get_by_role("link", name="Create API credentials").click()
    await page.get_by_label("Name", exact=True).fill("acme-gw")
    await page.get_by_label("Provider URL").fill(f"{mock_provider.url}/sms")
    await page.get_by_label("Authentication type").select_option("none")
    await page.get_by_label("Provider payload (JSON)").fill(
        '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}'
    )
    await page.get_by_label("Provider message id (delivery reports)").fill("$.ref")
    await page.get_by_label("Provider status (delivery reports)").fill("$.state[")
    await page.get_by_label("Status map: one provider status").fill(
        "DELIVRD = delivered\nEXPIRED = failed"
    )
    await page.get_by_label("Sample webhook body").fill('{"ref": "p-1", "state": "DELIVRD"}')
    await page.get_by_role("button", name="Check as a delivery report").click()
    error = page.locator("#delivery_reports-status_path-error")
    await error.wait_for()
    assert "JSONPath" in await error.inner_text()

    await page.get_by_label("Provider status (delivery reports)").fill("$.state")
    await page.get_by_role("button", name="Check as a delivery report").click()
    result = page.locator("#sample-result")
    await result.wait_for()
    assert await result.locator("td").all_inner_texts() == ["p-1", "DELIVRD", "delivered", ""]
    await check_page(page)
    await shot(page, "credential-webhook-sample-check")

    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    [view] = (await site.services.credentials.list()).items
    assert view.document["delivery_reports"]["status_map"] == {
        "DELIVRD": "delivered",
        "EXPIRED": "failed",
    }
    surface = await site.services.surfaces.create(
        {"name": "alerts", "credential_id": view.id, "sender": "Acme"}
    )
    await page.goto(f"{site.base}/admin/surfaces/{surface.id}")
    status_url = await page.get_by_role("textbox", name="Status webhook URL").input_value()
    assert status_url == surface.status_webhook_url
    gap = page.locator("#hook-inbound-gap")  # no inbound mapping: no inbound URL offered
    assert "has no inbound mapping" in await gap.inner_text()
    await check_page(page)
    await gap.get_by_role("link", name="Add its webhook mappings").click()
    await page.get_by_label("Sender number (inbound)").fill("$.from")
    await page.get_by_label("Message text (inbound)").fill("$.text")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    await page.goto(f"{site.base}/admin/surfaces/{surface.id}")
    inbound_url = await page.get_by_role("textbox", name="Inbound webhook URL").input_value()
    assert inbound_url == surface.inbound_webhook_url
    await context.close()
