"""Admin sessions, sign-in CSRF, security headers and hostile input (issue 15, points 6, 10,
13 and 14): the real app in-process over HTTPS (the session cookie is ``Secure``), on both
databases."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from pydantic import SecretStr

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from tests.conftest import ADMIN_KEY

OTHER_ADMIN_KEY = "rotated-admin-key-9876543210"
ADMIN_HEADERS = ("X-Frame-Options", "Content-Security-Policy", "X-Content-Type-Options")

Browser = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def _browser_on(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client of the app (app errors come back as 500s, not exceptions)."""
    app = create_app(settings, prebuilt=services)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="https://testserver",
        ) as http,
    ):
        yield http


@pytest.fixture
def browser(settings: Settings, services: Services) -> Browser:
    """Opens a fresh browser (empty cookie jar) on the app."""
    return lambda: _browser_on(settings, services)


async def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    return found.group(1) if found else ""


async def _sign_in(http: httpx.AsyncClient, key: str = ADMIN_KEY) -> httpx.Response:
    """Signs in as a person would: open the sign-in page, post its form."""
    page = await http.get("/admin/login")
    return await http.post("/admin/login", data={"key": key, "csrf": await _token(page)})


def _session(http: httpx.AsyncClient) -> str:
    value = http.cookies.get("smsbridge_admin", domain="testserver.local") or http.cookies.get(
        "smsbridge_admin"
    )
    assert value, "signed in, so the session cookie is set"
    return value


async def _opens_admin(http: httpx.AsyncClient, cookie: str) -> bool:
    answer = await http.get("/admin/credentials", headers={"Cookie": f"smsbridge_admin={cookie}"})
    assert answer.status_code in (200, 303), answer.text
    return answer.status_code == 200


# --- point 6: sessions end at sign-out and with the key that opened them ----------------------


async def test_a_cookie_copied_before_sign_out_is_refused_after(browser: Browser) -> None:
    async with browser() as http:
        signed_in = await _sign_in(http)
        assert signed_in.status_code == 303
        copied = _session(http)
        page = await http.get("/admin/credentials")
        assert page.status_code == 200

        out = await http.post("/admin/logout", data={"csrf": await _token(page)})
        assert out.status_code == 303

    async with browser() as thief:
        assert not await _opens_admin(thief, copied)
        refused = await thief.get(
            "/admin/credentials", headers={"Cookie": f"smsbridge_admin={copied}"}
        )
        assert refused.headers["location"] == "/admin/login"


async def test_signing_out_ends_only_that_session(browser: Browser) -> None:
    async with browser() as first, browser() as second:
        await _sign_in(first)
        await _sign_in(second)
        page = await first.get("/admin/credentials")
        await first.post("/admin/logout", data={"csrf": await _token(page)})

        assert (await second.get("/admin/credentials")).status_code == 200


async def test_a_new_master_key_ends_the_sessions_of_the_old_one(
    browser: Browser, settings: Settings
) -> None:
    async with browser() as http:
        await _sign_in(http)
        cookie = _session(http)
        assert await _opens_admin(http, cookie)

    # The same server (same database, same secret keys) restarted with another admin key.
    rotated = settings.model_copy(update={"admin_key": SecretStr(OTHER_ADMIN_KEY)})
    services = await build_services(rotated)
    try:
        async with _browser_on(rotated, services) as http:
            assert not await _opens_admin(http, cookie)
            assert (await _sign_in(http, ADMIN_KEY)).status_code == 401
            assert (await _sign_in(http, OTHER_ADMIN_KEY)).status_code == 303
            assert await _opens_admin(http, _session(http))
    finally:
        await services.close()


async def test_revoking_a_key_ends_its_sessions(browser: Browser, services: Services) -> None:
    created = await services.api_keys.create("ops", "admin")
    async with browser() as http:
        await _sign_in(http, created.key)
        cookie = _session(http)
        assert await _opens_admin(http, cookie)

        await services.api_keys.revoke(created.id)

        assert not await _opens_admin(http, cookie)


# --- point 13: sign-in CSRF, security headers -------------------------------------------------


async def test_sign_in_without_its_form_token_is_refused(browser: Browser) -> None:
    """A page elsewhere posting the sign-in form (login CSRF: the victim's browser signed in
    under the attacker's key) has neither the pre-session cookie nor its token."""
    async with browser() as http:
        forged = await http.post("/admin/login", data={"key": ADMIN_KEY})

        assert forged.status_code == 403
        assert "smsbridge_admin" not in forged.headers.get("set-cookie", "")
        assert "expired or did not come from this site" in forged.text
        # The refusal carries a fresh form: posting it signs in.
        retried = await http.post(
            "/admin/login", data={"key": ADMIN_KEY, "csrf": await _token(forged)}
        )
        assert retried.status_code == 303


async def test_a_sign_in_token_works_only_with_its_own_cookie(browser: Browser) -> None:
    async with browser() as attacker, browser() as victim:
        token = await _token(await attacker.get("/admin/login"))
        await victim.get("/admin/login")  # the victim has a sign-in cookie of its own

        forged = await victim.post("/admin/login", data={"key": ADMIN_KEY, "csrf": token})

        assert forged.status_code == 403


@pytest.mark.parametrize(
    "path", ["/admin/login", "/admin/credentials", "/admin/static/htmx.min.js", "/admin"]
)
async def test_admin_responses_carry_security_headers(browser: Browser, path: str) -> None:
    async with browser() as http:
        answer = await http.get(path)

    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert "script-src 'self';" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"


async def test_signed_in_pages_and_refusals_carry_security_headers(browser: Browser) -> None:
    async with browser() as http:
        await _sign_in(http)
        page = await http.get("/admin/credentials")
        refused = await http.post("/admin/logout", data={"csrf": "wrong"})

    for answer in (page, refused):
        assert answer.status_code in (200, 403)
        assert all(name in answer.headers for name in ADMIN_HEADERS)


async def test_admin_pages_have_no_inline_script(browser: Browser) -> None:
    """The policy allows scripts from files only: an inline one would silently not run."""
    async with browser() as http:
        await _sign_in(http)
        for path in ("/admin/credentials", "/admin/surfaces/new", "/admin/profiles"):
            page = await http.get(path)
            assert page.status_code == 200, path
            assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None, path


async def test_the_api_gets_no_admin_headers(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/credentials")

    assert answer.status_code == 200
    assert "X-Frame-Options" not in answer.headers


# --- point 10: hostile input answers cleanly, never 500 --------------------------------------


@pytest.mark.parametrize(
    "cookie",
    ["é.é", "eyJ4IjoxfQ.é", "x" * 5000 + ".sig", "..", "Zm9v.0000"],
    ids=["non-ascii", "non-ascii-signature", "huge", "dots", "bad-signature"],
)
async def test_a_hostile_session_cookie_sends_to_sign_in(browser: Browser, cookie: str) -> None:
    async with browser() as http:
        answer = await http.get(
            "/admin/credentials",
            headers={"Cookie": f"smsbridge_admin={cookie}".encode()},
        )

    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/login"


@pytest.mark.parametrize("token", ["é", "\u2028", "ü" * 64, "x" * 10_000])
async def test_a_hostile_csrf_token_is_a_403_page(browser: Browser, token: str) -> None:
    async with browser() as http:
        await _sign_in(http)
        form = await http.post("/admin/logout", data={"csrf": token})
        sign_in = await http.post("/admin/login", data={"key": ADMIN_KEY, "csrf": token})
        still_in = await http.get("/admin/credentials")

    assert form.status_code == 403
    assert "security token does not match" in form.text
    assert sign_in.status_code == 403
    assert still_in.status_code == 200


async def test_a_hostile_sign_in_cookie_gets_a_fresh_form(browser: Browser) -> None:
    async with browser() as http:
        page = await http.get(
            "/admin/login",
            headers={"Cookie": "smsbridge_sign_in=ééé".encode()},
        )
        forged = await http.post(
            "/admin/login",
            data={"key": ADMIN_KEY, "csrf": "é"},
            headers={"Cookie": "smsbridge_sign_in=ééé".encode()},
        )

    assert page.status_code == 200
    assert "smsbridge_sign_in=" in page.headers["set-cookie"]
    assert forged.status_code == 403


@pytest.mark.parametrize("rows", ["abc", "²", "-3", "9" * 5000, "1e3", ""])
async def test_a_bad_header_rows_count_is_not_a_500(browser: Browser, rows: str) -> None:
    async with browser() as http:
        await _sign_in(http)
        page = await http.get("/admin/credentials/new")
        answer = await http.post(
            "/admin/credentials/new",
            data={
                "csrf": await _token(page),
                "do": "add_header",
                "name": "hostile",
                "header_rows": rows,
                "header_label_0": "X-Kept",
                "header_type_0": "static",
                "header_value_0": "v",
            },
        )

    assert answer.status_code == 200, answer.text
    if not rows.lstrip("-").isdigit() or rows.startswith("9"):
        assert 'value="X-Kept"' in answer.text  # a count it cannot read: the rows posted


async def test_a_payload_nested_thousands_deep_is_a_field_error(browser: Browser) -> None:
    async with browser() as http:
        await _sign_in(http)
        page = await http.get("/admin/credentials/new")
        answer = await http.post(
            "/admin/credentials/new",
            data={
                "csrf": await _token(page),
                "name": "deep",
                "provider_url": "https://api.example.com/send",
                "auth_type": "none",
                "content_type": "application/json",
                "payload": "[" * 5000 + "]" * 5000,
            },
        )
    assert answer.status_code in (200, 422), answer.status_code  # the form again, not a 500
    assert "nested more than 32 levels deep" in answer.text


# --- point 14: no hint of a short secret ------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "hint"),
    [("abc123", ""), ("fifteen-chars-x", ""), ("sixteen-chars-xy", "s-xy")],
)
async def test_a_short_secret_shows_no_hint(
    client: httpx.AsyncClient, browser: Browser, secret: str, hint: str
) -> None:
    created = await client.post(
        "/api/v1/credentials",
        json={
            "name": "short",
            "provider_url": "sandbox://default",
            "auth": {"type": "bearer", "token": secret},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["auth"]["token"] == {"set": True, "last4": hint}
    preview = await client.post(
        f"/api/v1/credentials/{created.json()['id']}/preview",
        json={"to": "+33612345678", "from": "+15550001111", "message": "Hi"},
    )
    assert preview.json()["headers"]["Authorization"] == f"Bearer ****{hint}"

    async with browser() as http:
        await _sign_in(http)
        page = await http.get(f"/admin/credentials/{created.json()['id']}")
    assert page.status_code == 200
    if hint:
        assert f"set (…{hint})" in page.text
    else:
        assert f"…{secret[-4:]}" not in page.text


_SIGNED_FORM = {
    "name": "tw-api-key",
    "provider_url": "https://api.example.com/{{appId}}/messages",
    "provider_app_id": "AC123",
    "auth_type": "basic",
    "auth_username": "SK123",
    "content_type": "application/json",
    "payload": '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}',
}


async def test_the_form_keeps_a_webhook_signing_secret_without_showing_it(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    secret = "twilio-auth-token-0123456789abcdef"
    async with browser() as http:
        await _sign_in(http)
        page = await http.get("/admin/credentials/new")
        created = await http.post(
            "/admin/credentials/new",
            data={
                "csrf": await _token(page),
                **_SIGNED_FORM,
                "auth_password": "api-key-secret-0123456789",
                "webhook_secret": secret,
            },
            follow_redirects=False,
        )
        assert created.status_code in (302, 303), re.findall(
            r"class=\"error\"[^<]*>([^<]*)", created.text
        )
        [listed] = [c for c in (await client.get("/api/v1/credentials")).json()["items"]]
        assert listed["webhook_secret"] == {"set": True, "last4": "cdef"}
        edit = await http.get(f"/admin/credentials/{listed['id']}")
        assert secret not in edit.text
        assert 'id="webhook_secret"' in edit.text and "cdef" in edit.text
        # Saved again without retyping it: the stored secret stays.
        saved = await http.post(
            f"/admin/credentials/{listed['id']}",
            data={
                "csrf": await _token(edit),
                **_SIGNED_FORM,
            },
            follow_redirects=False,
        )
        assert saved.status_code in (302, 303), re.findall(
            r"class=\"error\"[^<]*>([^<]*)", saved.text
        )
    kept = (await client.get(f"/api/v1/credentials/{listed['id']}")).json()
    assert kept["webhook_secret"] == {"set": True, "last4": "cdef"}
