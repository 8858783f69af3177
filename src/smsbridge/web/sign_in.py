"""Admin pages: sign-in with an API key, sign-out, and the admin's home (each role's first
screen). The sign-in form's CSRF token is bound to a pre-session cookie, as no session exists
yet (see :mod:`smsbridge.web.session`)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from smsbridge.errors import AuthenticationRequired
from smsbridge.services.api_keys import Role
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.web.session import (
    COOKIE,
    LIFETIME,
    SIGN_IN_COOKIE,
    SIGN_IN_LIFETIME,
    new_sign_in_nonce,
)
from smsbridge.web.shell import Visitor, pages, posted_form, session_signer, visitor

router = APIRouter(prefix="/admin", include_in_schema=False)


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
        title="Sign in",
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
            path="/admin/login",
        )
    return response


@router.get("/login")
async def login_page(request: Request, svc: ServiceCatalog = Depends(services)) -> Response:
    return _login_form(request, svc)


@router.post("/login")
async def login(request: Request, svc: ServiceCatalog = Depends(services)) -> Response:
    form = await request.form()
    signer = session_signer(svc)
    if not signer.sign_in_valid(request.cookies.get(SIGN_IN_COOKIE), str(form.get("csrf") or "")):
        return _login_form(
            request,
            svc,
            status=403,
            error="This sign-in form expired or did not come from this site. "
            "Enter the API key again.",
        )
    try:
        who = await svc.api_keys.authenticate(str(form.get("key") or "").strip())
    except AuthenticationRequired:
        return _login_form(request, svc, status=401, error="This API key is not valid.")
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
    response.delete_cookie(SIGN_IN_COOKIE, path="/admin/login")
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
