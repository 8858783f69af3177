"""The campaign form and the Profiles page as a marketer uses them, in a real browser (Debian's
Chromium driven by Playwright) against a real server on loopback: the audience counted as it
is edited, a sample recipient's message with its segments, scheduling in a named time zone,
a launch that names its number of recipients first, errors in the form's words next to their
field, and profiles listed without a search. Every page is checked at 390 px wide."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from smsbridge.services.consent import ConsentStatus
from tests.e2e.harness import Site, check_page, shot, sign_in
from tests.mock_provider import MockProvider

PHONE = 390
"""A phone's width: no page may scroll sideways at it."""


async def _audience(site: Site, mock_provider: MockProvider) -> None:
    """A surface sending as Acme, and profiles: FR ones (one opted out of Acme, one sharing
    Ana's number), BE ones."""
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
    people = [
        ("a-ana", "+33612345601", "Ana", "FR"),
        ("b-bo", "+33612345602", "Bo", "FR"),
        ("c-cy", "+33612345603", "Cy", "FR"),  # opted out of Acme
        ("d-di", "+33612345604", "Di", "FR"),
        ("e-ed", "+33612345601", "Ed", "FR"),  # Ana's number
        ("f-fay", "+32470123456", "Fay", "BE"),
        ("g-gus", "+32470123457", "Gus", "BE"),
    ]
    for external_id, phone, first, country in people:
        await site.services.profiles.put(
            external_id, {"phone": phone, "attributes": {"firstName": first, "country": country}}
        )
    await site.services.consent.change(
        "+33612345603", sender="Acme", status=ConsentStatus.OPTED_OUT, source="admin", actor="t"
    )


async def _marketer(site: Site, browser: Any, **options: Any) -> tuple[Any, Any]:
    """A signed-in sender key in a 390 px wide browser, on the new campaign form."""
    key = await site.services.api_keys.create("marketer", "sender")
    context = await browser.new_context(viewport={"width": PHONE, "height": 900}, **options)
    page = await context.new_page()
    await sign_in(page, site.base, key.key)
    await page.wait_for_url(f"{site.base}/admin/messages")
    await page.goto(f"{site.base}/admin/campaigns/new")
    return context, page


async def _no_sideways_scroll(page: Any) -> None:
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE, f"the page is {width}px wide at {PHONE}px"


async def test_audience_is_counted_as_it_is_edited(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    await _audience(site, mock_provider)
    context, page = await _marketer(site, browser)
    size = page.locator("#audience-size")
    assert not await page.get_by_label("Every profile").is_checked()  # nothing chosen for you
    assert "Choose who receives it" in await size.inner_text()

    await page.get_by_label("Attribute filters, one per line").fill("country=FR")
    assert await page.get_by_label("Profiles whose attributes match").is_checked()
    await size.get_by_text("3 recipients").wait_for()  # Ana, Bo, Di: Cy opted out, Ed shares
    text = await size.inner_text()
    assert "5 profiles in the audience" in text
    assert "1 opted out of Acme" in text
    assert "1 share a number with another profile" in text
    await check_page(page)
    await shot(page, "campaign-form-audience")

    await page.get_by_label("Every profile").check()
    await size.get_by_text("5 recipients").wait_for()  # + Fay, Gus
    await page.get_by_label("These profile ids").check()
    await page.get_by_label("Profile ids, one per line").fill("f-fay\nnobody\nc-cy")
    await size.get_by_text("1 recipient", exact=False).wait_for()
    text = await size.inner_text()
    assert "1 listed id is no profile" in text and "1 opted out of Acme" in text
    await _no_sideways_scroll(page)
    await context.close()


async def test_count_the_audience_without_javascript(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    await _audience(site, mock_provider)
    context, page = await _marketer(site, browser, java_script_enabled=False)
    await page.get_by_label("Attribute filters, one per line").fill("country=BE")
    await page.get_by_label("Message", exact=True).fill("Hi {{ profile.firstName }}")
    await page.get_by_role("button", name="Count the audience").click()
    await page.locator("#recipients").wait_for()
    assert await page.locator("#recipients").inner_text() == "2"
    assert await page.get_by_label("Profiles whose attributes match").is_checked()
    assert await page.get_by_label("Attribute filters, one per line").input_value() == "country=BE"
    assert "Hi Fay" in await page.locator("#sample-text").inner_text()  # the sample, too
    assert await page.get_by_role("alert").count() == 0  # counting is not creating
    assert (await site.services.campaigns.list()).items == []
    await check_page(page)
    await context.close()


async def test_sample_recipient_preview_with_segments_and_encoding(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    await _audience(site, mock_provider)
    context, page = await _marketer(site, browser)
    preview = page.locator("#sample-preview")
    await page.get_by_label("Attribute filters, one per line").fill("country=BE")
    await page.get_by_label("Message", exact=True).fill(
        "Hi {{ profile.firstName }}, spring is here"
    )
    await preview.get_by_text("Hi Fay, spring is here").wait_for()  # the audience's first
    assert "f-fay" in await preview.inner_text()
    assert await preview.locator("#encoding").inner_text() == "GSM-7"
    assert await preview.locator("#segments").inner_text() == "1"

    # an emoji makes it UCS-2; 70 characters fit one UCS-2 segment: this is two
    await page.get_by_label("Message", exact=True).fill(
        "Hi {{ profile.firstName }} 🌷 " + "spring offers on every flower in the shop " * 2
    )
    await preview.locator("#encoding").get_by_text("UCS-2").wait_for()
    assert await preview.locator("#segments").inner_text() == "2"
    assert await preview.locator("mark").first.inner_text() == "🌷"
    assert "Hi Fay 🌷" in await preview.locator("#sample-text").inner_text()

    await page.get_by_label("Attribute filters, one per line").fill("country=FR")
    await preview.get_by_text("Hi Ana 🌷", exact=False).wait_for()  # follows the audience
    await check_page(page)
    await shot(page, "campaign-form-preview")
    await context.close()


async def test_schedule_creates_a_campaign_with_send_at_in_the_named_zone(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    await _audience(site, mock_provider)
    context, page = await _marketer(site, browser, timezone_id="Europe/Paris")
    zone = page.get_by_label("Time zone of that date and time")
    assert await zone.input_value() == "Europe/Paris"  # the browser's own zone, shown
    await page.get_by_label("Name", exact=True).fill("summer")
    await page.get_by_label("Message", exact=True).fill("Summer sale, {{ profile.firstName }}")
    await page.get_by_label("Every profile").check()
    await page.get_by_label("Send at").fill("2031-06-01T09:00")
    summary = page.locator("#when-summary")
    await summary.get_by_text("2031-06-01 07:00 UTC", exact=False).wait_for()
    assert "09:00 Europe/Paris" in await summary.inner_text()
    await check_page(page)
    await page.get_by_role("button", name="Create (draft)").click()
    await page.get_by_role("heading", name="Campaign summer").wait_for()
    assert "from 2031-06-01 07:00 UTC" in await page.locator("#campaign-when").inner_text()
    [campaign] = (await site.services.campaigns.list()).items
    assert campaign["send_at"] == datetime(2031, 6, 1, 7, 0, tzinfo=UTC)
    await check_page(page)

    # the same date in another zone, and a time already past: said next to the field
    await page.goto(f"{site.base}/admin/campaigns/new")
    await zone.select_option("UTC")
    await page.get_by_label("Send at").fill("2020-01-01T09:00")
    await page.get_by_role("button", name="Create (draft)").click()
    error = page.locator("#send_at-error")
    await error.wait_for()
    assert "This time has passed" in await error.inner_text()
    assert "in UTC" in await error.inner_text()
    await context.close()


async def test_launch_asks_to_confirm_the_number_of_recipients(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    await _audience(site, mock_provider)
    context, page = await _marketer(site, browser)
    await page.get_by_label("Name", exact=True).fill("spring")
    await page.get_by_label("Message", exact=True).fill("Hi {{ profile.firstName }}")
    await page.get_by_label("Attribute filters, one per line").fill("country=FR")
    await page.get_by_role("button", name="Create (draft)").click()
    await page.get_by_role("heading", name="Campaign spring").wait_for()
    [draft] = (await site.services.campaigns.list()).items

    await page.get_by_role("button", name="Launch").click()
    await page.get_by_role("heading", name="Send to 3 recipients?").wait_for()
    assert (await site.services.campaigns.get(draft["id"]))["status"] == "draft"  # asked only
    assert "1 opted out of Acme" in await page.locator("#audience-size").inner_text()
    await check_page(page)
    await shot(page, "campaign-launch-confirm")
    await page.get_by_role("link", name="No, back to the campaign").click()
    await page.get_by_role("heading", name="Campaign spring").wait_for()
    assert (await site.services.campaigns.get(draft["id"]))["status"] == "draft"

    # the audience grows between the question and the answer: asked again, with the new count
    await page.get_by_role("button", name="Launch").click()
    await page.get_by_role("heading", name="Send to 3 recipients?").wait_for()
    await site.services.profiles.put(
        "h-hal", {"phone": "+33612345608", "attributes": {"firstName": "Hal", "country": "FR"}}
    )
    await page.get_by_role("button", name="Yes, send to 3 recipients").click()
    await page.get_by_role("heading", name="Send to 4 recipients?").wait_for()
    assert "The audience changed" in await page.get_by_role("alert").inner_text()
    assert (await site.services.campaigns.get(draft["id"]))["status"] == "draft"

    await page.get_by_role("button", name="Yes, send to 4 recipients").click()
    await page.locator("#campaign-status").get_by_text("running").wait_for()
    await context.close()


async def test_bad_input_is_said_next_to_each_field_all_at_once(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    await _audience(site, mock_provider)
    context, page = await _marketer(site, browser)
    await page.get_by_role("button", name="Create (draft)").click()  # nothing filled in
    await page.locator("#audience-error").wait_for()
    assert "Choose who receives the campaign" in await page.locator("#audience-error").inner_text()
    assert "Give the campaign a name" in await page.locator("#name-error").inner_text()
    assert "Write the message" in await page.locator("#body-error").inner_text()

    await page.get_by_label("Message", exact=True).fill("Hi {{ profile.firstName }}")
    await page.get_by_label("Profiles whose attributes match").check()
    await page.get_by_label("Attribute filters, one per line").fill(
        "country=FR\ncountry FR\nfirst name=Ana\nvip="
    )
    await page.get_by_label("Throttle (messages per second, optional)").fill("fast")
    await page.get_by_role("button", name="Create (draft)").click()
    error = page.locator("#filter-error")
    await error.wait_for()
    said = await error.inner_text()
    assert "Line 2 (“country FR”) has no “=”: write name=value" in said
    assert "Line 3: “first name” is not an attribute name" in said
    assert "Line 4: write the value after “vip=”" in said
    assert said.index("Line 2") < said.index("Line 3") < said.index("Line 4")  # in line order
    # beside its field: right after the filter box, which points at it
    assert (
        await page.evaluate("() => document.getElementById('filter').nextElementSibling.id")
        == "filter-error"
    )
    described = await page.get_by_label("Attribute filters, one per line").get_attribute(
        "aria-describedby"
    )
    assert "filter-error" in described.split()
    # every problem at once, in the form's words, never the API's paths
    assert "Give the campaign a name" in await page.locator("#name-error").inner_text()
    assert "messages per second" in await page.locator("#throttle_per_second-error").inner_text()
    content = await page.content()
    assert "audience.filter" not in content and "attributes." not in content
    summary = await page.get_by_role("alert").inner_text()
    assert "Please correct these 5 problems" in summary
    assert summary.index("Name") < summary.index("Attribute filters") < summary.index("Throttle")
    assert (await site.services.campaigns.list()).items == []
    await check_page(page)
    await shot(page, "campaign-form-errors")
    await context.close()


async def test_profiles_are_listed_without_a_search_a_page_at_a_time(
    site: Site, browser: Any
) -> None:
    for n in range(60):
        await site.services.profiles.put(
            f"crm-{n:03d}", {"phone": f"+336123450{n:02d}", "attributes": {"n": n}}
        )
    key = await site.services.api_keys.create("reader", "viewer")
    context = await browser.new_context(viewport={"width": PHONE, "height": 900})
    page = await context.new_page()
    await sign_in(page, site.base, key.key)
    await page.wait_for_url(f"{site.base}/admin/messages")
    await page.get_by_role("link", name="Profiles").click()
    rows = page.locator("#profiles-table tbody tr")
    assert await rows.count() == 50  # the API's page size
    assert await page.get_by_role("link", name="crm-000").count() == 1
    assert await page.get_by_role("link", name="crm-049").count() == 1
    assert "60 profiles in all" in await page.content()
    await check_page(page)
    await shot(page, "profiles-list")

    await page.get_by_role("link", name="Next page →").click()
    await page.get_by_role("link", name="crm-050").wait_for()
    assert await rows.count() == 10
    assert await page.get_by_role("link", name="Next page →").count() == 0
    await page.get_by_role("link", name="First page").click()
    await page.get_by_role("link", name="crm-000").wait_for()

    await page.get_by_label("Find by phone number or external id").fill("+33612345007")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name="crm-007").wait_for()
    assert await rows.count() == 1
    await check_page(page)
    await context.close()


async def _csv(text: str) -> AsyncIterator[bytes]:
    yield text.encode()


async def test_the_form_in_french_on_a_phone(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    """A browser in French (``Accept-Language: fr-FR``) at 390 px: the form, the audience's
    count, the sample recipient's message and the launch confirmation are in French, with the
    numbers written the French way (1 203, a narrow no-break space), and nothing overflows."""
    await _audience(site, mock_provider)
    rows = "".join(f"fr-{n:04d},+3362000{n:04d},Zoé,FR\n" for n in range(1200))
    result = await site.services.profiles.import_stream(
        _csv("external_id,phone,firstName,country\n" + rows), "text/csv"
    )
    assert result.imported == 1200
    key = await site.services.api_keys.create("marketer", "sender")
    context = await browser.new_context(viewport={"width": PHONE, "height": 900}, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{site.base}/admin/login")
    await page.get_by_label("Clé d\u2019API").fill(key.key)
    await page.get_by_label("Clé d\u2019API").press("Enter")
    await page.wait_for_url(f"{site.base}/admin/messages")
    await page.get_by_role("link", name="Campagnes").click()
    await page.get_by_role("link", name="Créer une campagne").click()
    await page.get_by_role("heading", name="Créer une campagne").wait_for()
    assert await page.locator("html").get_attribute("lang") == "fr"
    size = page.locator("#audience-size")
    assert "Choisissez qui la reçoit" in await size.inner_text()

    await page.get_by_label("Nom", exact=True).fill("printemps")
    await page.get_by_label("Message", exact=True).fill("Bonjour {{ profile.firstName }}")
    await page.get_by_label("Filtres d\u2019attributs, un par ligne").fill("country=FR")
    assert await page.get_by_label("Les profils dont les attributs correspondent").is_checked()
    # Ana, Bo, Di and the 1,200 imported: Cy opted out, Ed shares Ana's number
    await size.get_by_text("1\u202f203 destinataires").wait_for()
    text = await size.text_content() or ""
    assert "1\u202f205 profils dans l\u2019audience" in text
    assert "1 désinscrit de Acme\u00a0: exclu" in text
    assert "1 partage un numéro avec un autre profil" in text
    preview = page.locator("#sample-preview")
    await preview.get_by_text("Bonjour Ana").wait_for()  # the audience's first profile
    said = await preview.text_content() or ""
    assert "le premier profil de l\u2019audience, le recevra\u00a0:" in said
    assert "caractères" in said and "GSM-7\u00a0: 160 caractères" in said
    await check_page(page)
    await shot(page, "campaign-form-fr")

    await page.get_by_role("button", name="Créer (brouillon)").click()
    await page.get_by_role("heading", name="Campagne printemps").wait_for()
    audience = await page.locator("#campaign-audience").text_content() or ""
    assert "les profils avec country=FR" in audience
    assert "1\u202f203 destinataires aujourd\u2019hui" in audience
    await check_page(page)

    await page.get_by_role("button", name="Lancer").click()
    heading = page.locator("h1")
    await heading.get_by_text("Envoyer à").wait_for()
    assert await heading.text_content() == "Envoyer à 1\u202f203 destinataires\u202f?"
    confirm = page.get_by_role("button", name="Oui, envoyer à")
    assert await confirm.text_content() == "Oui, envoyer à 1\u202f203 destinataires"
    assert await page.get_by_role("link", name="Non, retour à la campagne").count() == 1
    await check_page(page)
    await shot(page, "campaign-launch-confirm-fr")
    await confirm.click()
    await page.locator("#campaign-status").get_by_text("en cours").wait_for()
    await check_page(page)
    await context.close()
