"""The credential form as a marketer meets it (issue 18, items 2, 5, 6, 8 and 13), in a real
Chromium: only the chosen authentication type's fields, Bearer App and Basic first; every
problem at once, beside its field, in the form's words; the secondary buttons work before
the name is typed; the brief's four contextual helps; the provider's answer on *Validate
connection*, secrets masked."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_KEY
from tests.e2e.harness import TOKEN, Site, check_page, shot, sign_in
from tests.mock_provider import MockProvider, Reply

PAYLOAD = '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}'


async def _new_form(browser: Any, site: Site, width: int = 1280, **options: Any) -> Any:
    context = await browser.new_context(viewport={"width": width, "height": 900}, **options)
    page = await context.new_page()
    await sign_in(page, site.base, ADMIN_KEY)
    await page.wait_for_url(f"{site.base}/admin/credentials")
    await page.goto(f"{site.base}/admin/credentials/new")
    return page


async def _visible(page: Any, *ids: str) -> list[bool]:
    return [await page.locator(f"#{i}").is_visible() for i in ids]


AUTH_INPUTS = ("auth_scheme", "auth_token", "auth_username", "auth_password", "auth_header")
AUTH_INPUTS_MORE = ("auth_key", "auth_token_url", "auth_client_secret", "auth_secret")


async def test_only_the_chosen_types_fields_show_bearer_app_and_basic_first(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    page = await _new_form(browser, site)
    options = await page.locator("#auth_type option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert options[:2] == ["bearer_app", "basic"]
    assert await page.locator("#auth_type").input_value() == "bearer_app"
    # Bearer App: the token only (its scheme is App)
    assert await _visible(page, *AUTH_INPUTS, *AUTH_INPUTS_MORE) == [
        False,
        True,
        *[False] * 7,
    ]
    await shot(page, "credential-form-bearer-app")

    # keyboard only: focus the type, move down to Basic
    await page.locator("#auth_type").focus()
    await page.keyboard.press("ArrowDown")
    assert await page.locator("#auth_type").input_value() == "basic"
    assert await _visible(page, "auth_username", "auth_password", "auth_token") == [
        True,
        True,
        False,
    ]
    await page.keyboard.press("ArrowUp")  # back to Bearer App

    await page.get_by_label("Name", exact=True).fill("infobip-like")
    await page.get_by_label("Provider URL").fill(f"{mock_provider.url}/sms")
    await page.get_by_label("API token", exact=True).fill(TOKEN)
    await page.get_by_label("Provider payload (JSON)").fill(PAYLOAD)
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    stored = (await site.services.credentials.list()).items[0]
    assert stored.document["auth"]["type"] == "bearer"
    assert stored.document["auth"]["scheme"] == "App"

    await page.get_by_role("link", name="Edit").click()
    assert await page.locator("#auth_type").input_value() == "bearer_app"
    await page.goto(f"{site.base}/admin/credentials/{stored.id}/validate")
    await page.get_by_label("Send a test message to").fill("+33612345678")
    await page.get_by_role("button", name="Send test message").click()
    await page.get_by_text("Connection works").wait_for()
    assert mock_provider.requests[-1].header("authorization") == f"App {TOKEN}"


async def test_without_javascript_a_button_shows_another_types_fields(
    site: Site, browser: Any
) -> None:
    page = await _new_form(browser, site, java_script_enabled=False)
    await page.get_by_label("API token", exact=True).fill(TOKEN)
    await page.locator("#auth_type").select_option("basic")
    assert not await page.locator("#auth_username").is_visible()  # no script to show it
    await page.get_by_role("button", name="Show this type's fields").click()
    await page.locator("#auth_username").wait_for()
    assert await _visible(page, "auth_username", "auth_password", "auth_token") == [
        True,
        True,
        False,
    ]
    assert TOKEN not in await page.content()


async def test_every_problem_at_once_beside_its_field_in_the_forms_words(
    site: Site, browser: Any
) -> None:
    page = await _new_form(browser, site, width=390)
    await page.get_by_label("Name", exact=True).fill("broken")
    await page.get_by_label("Provider URL").fill("ftp://sms.example.com/send")
    await page.get_by_label("Provider payload (JSON)").fill('{"to": "{{toNumber}}",')
    await page.locator("#header_label_0").fill("X-Api-Version")
    await page.locator("#header_value_0").fill("3")
    await page.get_by_role("button", name="Add a header row").click()
    await page.locator("#header_label_1").fill("X-Secret")
    await page.locator("#header_type_1").select_option("secret")
    await page.get_by_role("button", name="Save").click()
    summary = page.locator("#problems")
    await summary.wait_for()
    text = await summary.inner_text()
    # the bad JSON, the URL, the missing token and the header row's value, in one round
    for expected in ("Provider URL", "Provider payload", "API token", "Header row 2"):
        assert expected in text, text
    assert "headers[" not in text and "auth." not in text
    for error in ("#provider_url-error", "#payload-error", "#auth-token-error", "#header-1-error"):
        assert await page.locator(error).is_visible(), error
    assert "Header row 2" in await page.locator("#header-1-error").inner_text()
    assert "not valid JSON" in await page.locator("#payload-error").inner_text()
    # the summary leads to the field
    await summary.get_by_role("link", name="Provider URL").click()
    assert await page.evaluate("() => document.activeElement.id") == "provider_url"
    await check_page(page)
    await shot(page, "credential-form-all-problems-390")


async def test_secondary_buttons_work_before_the_name_is_typed(site: Site, browser: Any) -> None:
    page = await _new_form(browser, site)
    assert await page.get_by_label("Name", exact=True).input_value() == ""
    await page.get_by_role("button", name="Add a header row").click()
    await page.locator("#header_label_1").wait_for(timeout=5000)
    await page.locator("#preset").select_option("infobip")
    await page.get_by_role("button", name="Fill the form from the preset").click()
    await page.wait_for_function(
        "() => document.getElementById('provider_url').value.includes('infobip')"
    )


async def test_the_briefs_four_contextual_helps(site: Site, browser: Any) -> None:
    page = await _new_form(browser, site, width=390)
    helps = {
        "help-provider-url": "entry point",
        "help-auth-type": "Bearer App",
        "help-headers": "label",
        "help-payload": "{{toNumber}}",
    }
    for element, words in helps.items():
        details = page.locator(f"#{element}")
        assert await details.count() == 1, element
        assert not await details.locator("p").is_visible()
        await details.locator("summary").focus()
        await page.keyboard.press("Enter")  # keyboard only
        assert await details.locator("p").is_visible(), element
        assert words in await details.locator("p").inner_text()
    await check_page(page)
    await shot(page, "credential-form-helps-390")


async def test_validate_shows_the_providers_answer_with_secrets_masked(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    page = await _new_form(browser, site)
    await page.get_by_label("Name", exact=True).fill("refuses")
    await page.get_by_label("Provider URL").fill(f"{mock_provider.url}/sms")
    await page.locator("#auth_type").select_option("bearer")
    await page.get_by_label("API token", exact=True).fill(TOKEN)
    await page.get_by_label("Provider payload (JSON)").fill(PAYLOAD)
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    mock_provider.reply(
        Reply(400, {"error": "Invalid destination address", "you_sent": f"Bearer {TOKEN}"})
    )
    await page.get_by_role("link", name="Validate connection").click()
    await page.get_by_label("Send a test message to").fill("+33612345678")
    await page.get_by_role("button", name="Send test message").click()
    answer = page.locator("#provider-answer")
    await answer.wait_for()
    shown = await answer.inner_text()
    assert "Invalid destination address" in shown and "****" in shown
    assert TOKEN not in await page.content()
    await check_page(page)
    await shot(page, "validate-refused")


async def test_a_french_browser_gets_the_form_in_french_and_it_fits_a_phone(
    site: Site, browser: Any
) -> None:
    context = await browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 900})
    page = await context.new_page()
    await page.goto(f"{site.base}/admin/login")
    await page.get_by_label("Clé d\u2019API").fill(ADMIN_KEY)
    await page.get_by_label("Clé d\u2019API").press("Enter")
    await page.wait_for_url(f"{site.base}/admin/credentials")
    await page.get_by_role("heading", name="Canaux \u203a Identifiants d\u2019API").wait_for()
    await page.get_by_role("link", name="Créer des identifiants d\u2019API").click()
    await page.get_by_role("heading", name="Créer des identifiants d\u2019API").wait_for()
    assert await page.evaluate("() => document.documentElement.lang") == "fr"
    await page.get_by_label("Type d\u2019authentification").select_option("basic")
    assert await page.locator("#auth_username").is_visible()
    summary = page.locator("#help-auth-type summary")
    assert (
        await summary.inner_text()
        == "Qu\u2019est-ce que «\u00a0Type d\u2019authentification\u00a0»\u202f?"
    )
    payload_help = page.locator("#help-payload")
    await payload_help.locator("summary").click()
    assert "{{toNumber}}, {{fromNumber}} et {{message}}" in await payload_help.inner_text()

    await page.get_by_label("Nom", exact=True).fill("en-francais")
    await page.get_by_label("URL du fournisseur").fill("ftp://sms.example.com/send")
    await page.get_by_label("Contenu envoyé au fournisseur (JSON)").fill('{"to": "{{toNumber}}",')
    await page.get_by_role("button", name="Enregistrer").click()
    problems = page.locator("#problems")
    await problems.wait_for()
    text = await problems.inner_text()
    assert text.startswith("Veuillez corriger ces "), text
    for expected in (
        "URL du fournisseur\u00a0:",
        "Contenu envoyé au fournisseur\u00a0:",
        "Mot de passe",
    ):
        assert expected in text, text
    assert "JSON non valide" in await page.locator("#payload-error").inner_text()
    await check_page(page)
    await shot(page, "credential-form-fr-390")
    await context.close()


async def test_the_credential_form_by_keyboard_alone(
    site: Site, browser: Any, mock_provider: MockProvider
) -> None:
    """Tab reaches every field of the chosen authentication type (and none of the others),
    the type changes with the arrow keys, and Enter on Save saves."""
    page = await _new_form(browser, site, width=390)
    visited: list[str] = []

    async def tab_to(selector: str) -> None:
        for _ in range(150):
            await page.keyboard.press("Tab")
            here = await page.evaluate(
                "() => document.activeElement.id || document.activeElement.value || ''"
            )
            visited.append(here)
            if await page.evaluate("(s) => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}: {visited[-20:]}")

    await tab_to("#name")
    await page.keyboard.type("keyboard-gw")
    await tab_to("#provider_url")
    await page.keyboard.type(f"{mock_provider.url}/sms")
    await tab_to("#auth_type")
    await page.keyboard.press("ArrowDown")  # Basic
    await page.keyboard.press("ArrowUp")  # back to Bearer App
    await tab_to("#auth_token")
    await page.keyboard.type(TOKEN)
    await tab_to("#payload")
    await page.keyboard.type(PAYLOAD)
    await tab_to("button[name=do][value=save]")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{site.base}/admin/credentials?notice=*")
    hidden = {"auth_username", "auth_password", "auth_scheme", "auth_key", "auth_secret"}
    assert not hidden & set(visited), visited
    stored = (await site.services.credentials.list()).items[0]
    assert stored.document["name"] == "keyboard-gw"
    assert stored.document["auth"]["scheme"] == "App"
