"""The admin's language over HTTP (issue 18): chosen from ``Accept-Language``, switched and
remembered with a cookie through a CSRF-checked form (before signing in too), and the refusals
worded by the page modules in it. The real app in-process, on both databases."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from html import unescape

import httpx
import pytest

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services
from smsbridge.services.message_rows import SendRequest
from tests.conftest import ADMIN_KEY

Browser = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}


@pytest.fixture
def browser(settings: Settings, services: Services) -> Browser:
    """Opens a fresh browser (empty cookie jar) on the app, sending ``headers``."""

    @asynccontextmanager
    async def opened(headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings, prebuilt=services)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="https://testserver",
                headers=headers or {},
            ) as http,
        ):
            yield http

    return opened


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert found, page.text
    return found.group(1)


def _lang(page: httpx.Response) -> str:
    found = re.search(r'<html lang="(\w+)">', page.text)
    assert found, page.text
    return found.group(1)


async def _sign_in(http: httpx.AsyncClient) -> httpx.Response:
    page = await http.get("/admin/login")
    signed_in = await http.post("/admin/login", data={"key": ADMIN_KEY, "csrf": _token(page)})
    assert signed_in.status_code == 303
    return signed_in


async def test_the_browsers_language_chooses_the_pages(browser: Browser) -> None:
    async with browser(FRENCH) as http:
        page = await http.get("/admin/login")
        assert _lang(page) == "fr"
        assert "<h1>Se connecter</h1>" in page.text and "Clé d\u2019API" in page.text
        refused = await http.post("/admin/login", data={"key": "wrong", "csrf": _token(page)})
        assert refused.status_code == 401
        assert "Cette clé d\u2019API n\u2019est pas valide." in refused.text
        await _sign_in(http)
        messages = await http.get("/admin/messages")
        assert _lang(messages) == "fr" and "Aucun message ne correspond." in messages.text
    async with browser({"Accept-Language": "de-DE,en-US;q=0.8"}) as http:
        page = await http.get("/admin/login")
        assert _lang(page) == "en" and "<h1>Sign in</h1>" in page.text


async def test_switching_before_signing_in_is_remembered(browser: Browser) -> None:
    async with browser(FRENCH) as http:
        page = await http.get("/admin/login")
        switched = await http.post(
            "/admin/language", data={"lang": "en", "next": "/admin/login", "csrf": _token(page)}
        )
        assert switched.status_code == 303
        assert switched.headers["location"] == "/admin/login"
        cookie = switched.headers["set-cookie"]
        assert cookie.startswith("smsbridge_lang=en;")
        assert "samesite=lax" in cookie.lower() and "path=/admin" in cookie.lower()
        assert "httponly" in cookie.lower() and "secure" in cookie.lower()
        again = await http.get("/admin/login")  # the cookie wins over Accept-Language
        assert _lang(again) == "en" and "<h1>Sign in</h1>" in again.text
        await _sign_in(http)
        assert _lang(await http.get("/admin/messages")) == "en"  # and lasts past signing in


async def test_switching_when_signed_in_takes_the_sessions_token(browser: Browser) -> None:
    async with browser() as http:
        await _sign_in(http)
        page = await http.get("/admin/messages?status=sent")
        assert _lang(page) == "en"
        assert 'name="next" value="/admin/messages?status=sent"' in page.text
        switched = await http.post(
            "/admin/language",
            data={"lang": "fr", "next": "/admin/messages?status=sent", "csrf": _token(page)},
        )
        assert switched.headers["location"] == "/admin/messages?status=sent"
        french = await http.get(switched.headers["location"])
        assert _lang(french) == "fr" and "<h1>Messages</h1>" in french.text
        assert '<option value="sent" selected>envoyé</option>' in french.text


@pytest.mark.parametrize("token", ["", "forged", "x" * 40])
async def test_a_switch_without_a_valid_token_is_refused(browser: Browser, token: str) -> None:
    async with browser() as http:
        await http.get("/admin/login")  # a pre-session cookie, but not the token
        answer = await http.post("/admin/language", data={"lang": "fr", "csrf": token})
        assert answer.status_code == 403
        assert "smsbridge_lang" not in answer.headers.get("set-cookie", "")
        assert "Form expired" in answer.text


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/admin",
        "//evil.example/admin",
        "/\\evil.example",
        "/admin\\..\\x",
        "/elsewhere",
        "/admin/campaigns/cmp_1/launch",  # a form's result: no page to come back to
        "/admin/login\r\nSet-Cookie: x=1",
        "",
    ],
)
async def test_the_switch_only_comes_back_to_an_admin_page(browser: Browser, target: str) -> None:
    async with browser() as http:
        page = await http.get("/admin/login")
        switched = await http.post(
            "/admin/language", data={"lang": "fr", "next": target, "csrf": _token(page)}
        )
        assert switched.status_code == 303
        assert switched.headers["location"] == "/admin"


async def test_an_unknown_language_changes_nothing(browser: Browser) -> None:
    async with browser() as http:
        page = await http.get("/admin/login")
        switched = await http.post(
            "/admin/language", data={"lang": "de", "next": "/admin/login", "csrf": _token(page)}
        )
        assert switched.status_code == 303
        assert "smsbridge_lang" not in switched.headers.get("set-cookie", "")
    async with browser({**FRENCH, "Cookie": "smsbridge_lang=klingon"}) as http:
        assert _lang(await http.get("/admin/login")) == "fr"  # then Accept-Language decides
    async with browser({**FRENCH, "Cookie": "smsbridge_lang=en"}) as http:
        assert _lang(await http.get("/admin/login")) == "en"


async def test_refusals_from_the_shell_are_in_the_pages_language(
    browser: Browser, services: Services
) -> None:
    async with browser(FRENCH) as http:
        await _sign_in(http)
        expired = await http.post("/admin/logout", data={"csrf": "stale"})
        assert expired.status_code == 403
        assert "Formulaire expiré" in expired.text and "Rechargez la page" in expired.text
    viewer = await services.api_keys.create("reader", "viewer")
    async with browser(FRENCH) as http:
        page = await http.get("/admin/login")
        await http.post("/admin/login", data={"key": viewer.key, "csrf": _token(page)})
        refused = await http.get("/admin/compose")
        assert refused.status_code == 403
        assert "Accès refusé" in refused.text and "clé de rôle sender ou admin" in refused.text
        missing = await http.get("/admin/messages/msg_nothing")
        assert missing.status_code == 404 and "Ce message n\u2019existe pas." in missing.text


async def test_what_the_services_say_is_in_the_pages_language(
    browser: Browser, services: Services
) -> None:
    """The services' refusals (a number that is not one, a surface still in use, a template
    that does not compile) reach the pages in the visitor's language, the API stays English."""
    credential = await services.credentials.create(
        {
            "name": "Gateway",
            "provider_url": "sandbox://default",
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        }
    )
    surface = await services.surfaces.create(
        {"name": "Alerts", "credential_id": credential.id, "sender": "Acme"}
    )
    await services.messages.send(SendRequest(surface.id, "+33612345678", "Hello"))  # queued
    said: dict[str, list[str]] = {}
    for lang, headers in (("fr", FRENCH), ("en", {"Accept-Language": "en"})):
        async with browser(headers) as http:
            await _sign_in(http)
            compose = await http.get("/admin/compose")
            sent = await http.post(
                "/admin/compose",
                data={
                    "csrf": _token(compose),
                    "do": "send",
                    "surface_id": surface.id,
                    "to": "not-a-number",
                    "body": "Hi {{ profile.name ",
                },
            )
            assert sent.status_code == 422, sent.text
            notice = re.search(r'<p class="notice bad" role="alert">([^<]*)</p>', sent.text)
            assert notice, sent.text
            page = await http.get(f"/admin/surfaces/{surface.id}/delete")
            done = await http.post(
                f"/admin/surfaces/{surface.id}/delete", data={"csrf": _token(page)}
            )
            listed = await http.get(done.headers["location"])
            refused = re.search(r'<p class="notice bad" role="alert">([^<]*)</p>', listed.text)
            assert refused, listed.text
            said[lang] = [unescape(notice.group(1)), unescape(refused.group(1))]
    assert said["fr"] == [
        "to\u00a0: 'not-a-number' n\u2019est pas un numéro de téléphone (utilisez la forme "
        "+<indicatif du pays>)",
        "Suppression refusée\u00a0: le canal a des messages programmés ou en file "
        "d\u2019attente\u202f; annulez-les ou laissez-les partir avant de le supprimer",
    ]
    assert said["en"] == [
        "to: 'not-a-number' is not a phone number (use the +<country code> form)",
        "Not deleted: the surface has scheduled or queued messages; cancel them or let them "
        "finish before deleting it",
    ]


async def test_the_credential_forms_problems_are_in_the_pages_language(browser: Browser) -> None:
    """The credential form (the brief's own) shows the API's refusals of a document in French
    to a French visitor: a payload missing a required variable, a header name that is not one."""
    form = {
        "name": "Gateway",
        "provider_url": "https://api.example.com/send",
        "auth_type": "none",
        "content_type": "application/json",
        "payload": '{"to": "{{toNumber}}", "from": "{{fromNumber}}"}',
        "header_rows": "1",
        "header_label_0": "Bad Header",
        "header_type_0": "static",
        "header_value_0": "v",
    }
    async with browser(FRENCH) as http:
        await _sign_in(http)
        page = await http.get("/admin/credentials/new")
        answer = await http.post("/admin/credentials/new", data={"csrf": _token(page), **form})
    assert answer.status_code == 422, answer.text
    shown = unescape(answer.text)
    assert "doit contenir la variable {{message}}" in shown
    assert "'Bad Header' n\u2019est pas un nom d\u2019en-tête HTTP valide" in shown
    assert "must contain" not in shown and "is not a valid HTTP header name" not in shown
