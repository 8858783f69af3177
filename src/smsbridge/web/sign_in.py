"""Admin pages: sign-in with an API key, sign-out, and the admin's home (each role's first
screen), and the header's language switcher. The sign-in form's CSRF token is bound to a
pre-session cookie, as no session exists yet (see :mod:`smsbridge.web.session`); the language
switcher takes either token, so it works before signing in too."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Match

from smsbridge.errors import AuthenticationRequired
from smsbridge.services.api_keys import Role
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.web.i18n import LANG_COOKIE, LANG_COOKIE_AGE, supported, translator
from smsbridge.web.session import (
    COOKIE,
    LIFETIME,
    SIGN_IN_COOKIE,
    SIGN_IN_LIFETIME,
    csrf_valid,
    new_sign_in_nonce,
)
from smsbridge.web.shell import (
    Visitor,
    form_expired,
    pages,
    posted_form,
    session_signer,
    visitor,
)

router = APIRouter(prefix="/admin", include_in_schema=False)
# The pre-session cookie goes to every admin page: the language switcher checks it too.
SIGN_IN_PATH = "/admin"


def _login_form(
    request: Request, svc: ServiceCatalog, *, status: int = 200, error: str | None = None
) -> Response:
    """The sign-in page, its token bound to the browser's pre-session cookie (a new one
    when it has none yet)."""
    nonce = request.cookies.get(SIGN_IN_COOKIE) or ""
    fresh = not (nonce.isascii() and 16 <= len(nonce) <= 64)
    if fresh:
        nonce = new_sign_in_nonce()
    response = pages(request).render(
        "login.html",
        status=status,
        title=translator(request)("Sign in"),
        error=error,
        sign_in_token=session_signer(svc).sign_in_token(nonce),
    )
    if fresh:
        response.set_cookie(
            SIGN_IN_COOKIE,
            nonce,
            max_age=SIGN_IN_LIFETIME,
            httponly=True,
            samesite="strict",
            secure=svc.settings.public_url.startswith("https://"),
            path=SIGN_IN_PATH,
        )
    return response


@router.get("/login")
async def login_page(request: Request, svc: ServiceCatalog = Depends(services)) -> Response:
    return _login_form(request, svc)


@router.post("/login")
async def login(request: Request, svc: ServiceCatalog = Depends(services)) -> Response:
    form = await request.form()
    signer = session_signer(svc)
    _ = translator(request)
    if not signer.sign_in_valid(request.cookies.get(SIGN_IN_COOKIE), str(form.get("csrf") or "")):
        return _login_form(
            request,
            svc,
            status=403,
            error=_(
                "This sign-in form expired or did not come from this site. Enter the API key again."
            ),
        )
    try:
        who = await svc.api_keys.authenticate(str(form.get("key") or "").strip())
    except AuthenticationRequired:
        return _login_form(request, svc, status=401, error=_("This API key is not valid."))
    session_id = await svc.api_keys.open_session(who, timedelta(seconds=LIFETIME))
    _, cookie = signer.new(session_id, who.key_hash)
    response = RedirectResponse(
        "/admin/credentials" if who.role is Role.ADMIN else "/admin/messages", status_code=303
    )
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=LIFETIME,
        httponly=True,
        samesite="strict",
        secure=svc.settings.public_url.startswith("https://"),
        path="/admin",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)
    return response


@router.post("/logout")
async def logout(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    await posted_form(request, seen)  # only the CSRF check: no field is read
    await svc.api_keys.close_session(seen.session.session_id)  # a copied cookie ends too
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/admin")
    return response


@router.get("")
async def home(request: Request, seen: Visitor = Depends(visitor)) -> Response:
    target = "/admin/credentials" if seen.who.role is Role.ADMIN else "/admin/messages"
    return RedirectResponse(target, status_code=303)


@router.post("/language")
async def choose_language(request: Request, svc: ServiceCatalog = Depends(services)) -> Response:
    """The header's language switcher: remembers the choice (a cookie, ``SameSite=Lax`` so a
    link from elsewhere opens the admin in it) and goes back to the page it was on. Its form
    carries the session's CSRF token, or before signing in the sign-in form's."""
    form = await request.form()
    token = str(form.get("csrf") or "")
    signer = session_signer(svc)
    session = signer.load(request.cookies.get(COOKIE))
    signed_in = session is not None and csrf_valid(session, token)
    if not (signed_in or signer.sign_in_valid(request.cookies.get(SIGN_IN_COOKIE), token)):
        return form_expired(request)
    response = RedirectResponse(_back_to(request, str(form.get("next") or "")), status_code=303)
    lang = supported(str(form.get("lang") or ""))
    if lang is not None:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=LANG_COOKIE_AGE,
            httponly=True,
            samesite="lax",
            secure=svc.settings.public_url.startswith("https://"),
            path="/admin",
        )
    return response


def _back_to(request: Request, target: str) -> str:
    """``target`` when it is an admin page of this site (a GET route matches it); the
    admin's home otherwise (a form's result, a mistyped or foreign address)."""
    parts = urlsplit(target)
    local = (
        target.startswith("/admin")
        and not parts.scheme
        and not parts.netloc
        and "\\" not in target
        and target.isprintable()
    )
    if local:
        scope = {"type": "http", "method": "GET", "path": parts.path, "root_path": ""}
        for route in request.app.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return target
    return "/admin"
