"""The admin's shell, shared by every page module: templates, the signed-in visitor, forms
checked for their CSRF token, and refusals answered as pages.

Pages are plain forms posting back to the server (they work without JavaScript; htmx is
loaded for the pages that want partial updates). Every POST carries a CSRF token: the
session's, or before signing in, one bound to a pre-session cookie (see
:mod:`smsbridge.web.session`). Every admin response carries the security headers of
:mod:`smsbridge.web.headers`. Errors from the services are shown next to the field they name
(:func:`field_errors`).

Pages are in English or French (:mod:`smsbridge.web.i18n`): :func:`pages` gives the templates
in the request's language, and the helpers here word their refusals in it too.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection

from smsbridge.errors import AuthenticationRequired, Conflict, FieldError, InvalidInput, NotFound
from smsbridge.services.api_keys import Principal, Role
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.web.headers import AdminSecurityHeaders
from smsbridge.web.i18n import (
    LANGUAGES,
    formatters,
    language_of,
    translations,
    translator,
    translator_for,
)
from smsbridge.web.session import COOKIE, Session, SessionSigner, csrf_valid

HERE = Path(__file__).parent
STATIC = "/admin/static"
_T = TypeVar("_T")


def environment(lang: str) -> Environment:
    """The admin's templates (autoescaped) in ``lang``: gettext installed ``newstyle`` (the
    values of ``%(name)s`` placeholders are escaped) and the locale's filters."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True  # a {% trans %} block's lines are one sentence
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(formatters(lang))
    env.globals.update(lang=lang, languages=LANGUAGES)
    # What the services say (problems, refusals), shown in this language: by itself in
    # {{ … }}, and with the ``said`` filter as a {% trans %} block's value.
    env.finalize = env.filters["said"] = translator_for(lang).said
    return env


class Pages:
    """The admin's templates: one environment per language, built once and then only read,
    so concurrent requests in different languages share nothing mutable."""

    def __init__(self) -> None:
        self._envs = {lang: environment(lang) for lang in LANGUAGES}

    def env(self, lang: str) -> Environment:
        return self._envs[lang]

    def for_request(self, request: HTTPConnection) -> LocalPages:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return LocalPages(self._envs[language_of(request)], here)


@dataclass(frozen=True)
class LocalPages:
    """The templates in one request's language. ``here`` (the page's address) is where the
    header's language switcher comes back to."""

    env: Environment
    here: str

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("static", STATIC)
        context.setdefault("who", None)
        context.setdefault("title", "smsbridge")
        context.setdefault("here", self.here)
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def fragment(self, template: str, **context: Any) -> str:
        """A partial page (what htmx swaps in)."""
        return self.env.get_template(template).render(**context)


class SignInFirst(Exception):
    """No valid session: the browser goes to the sign-in page."""


class PageInstead(Exception):
    """Answer with this page instead of the handler's (a refusal found by a helper)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass
class Visitor:
    who: Principal
    session: Session

    def context(self) -> dict[str, Any]:
        return {
            "who": {"name": self.who.name, "role": self.who.role.value},
            "csrf": self.session.csrf,
        }


def mount(app: FastAPI) -> None:
    """The shell on ``app``: templates, security headers, static files, and the answers to
    :class:`SignInFirst` and :class:`PageInstead` (page modules add their routers after)."""
    app.state.pages = Pages()
    app.add_middleware(AdminSecurityHeaders, prefix="/admin")
    app.mount(STATIC, StaticFiles(directory=HERE / "static"), name="admin-static")

    async def sign_in_first(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse("/admin/login", status_code=303)

    async def page_instead(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageInstead)
        return exc.response

    app.add_exception_handler(SignInFirst, sign_in_first)
    app.add_exception_handler(PageInstead, page_instead)


def pages(request: Request) -> LocalPages:
    """The admin's templates (built once, when the admin is mounted), in the request's
    language."""
    shared: Pages = request.app.state.pages
    return shared.for_request(request)


def session_signer(svc: ServiceCatalog) -> SessionSigner:
    return SessionSigner(svc.box.derive("admin-session"))


async def visitor(request: Request, svc: ServiceCatalog = Depends(services)) -> Visitor:
    signer = session_signer(svc)
    session = signer.load(request.cookies.get(COOKIE))
    if session is None:
        raise SignInFirst()
    try:
        who = await svc.api_keys.session_principal(session.session_id)
    except AuthenticationRequired:
        raise SignInFirst() from None
    if not signer.bound_to(session, who.key_hash):  # the key's value changed since
        raise SignInFirst()
    return Visitor(who, session)


async def posted_form(request: Request, seen: Visitor) -> FormData:
    """The posted form; a 403 page instead when its CSRF token is wrong."""
    form = await request.form()
    if not csrf_valid(seen.session, str(form.get("csrf") or "")):
        raise PageInstead(form_expired(request, **seen.context()))
    return form


def form_expired(request: Request, **context: Any) -> Response:
    """The 403 page of a form whose CSRF token does not match."""
    _ = translator(request)
    return pages(request).render(
        "message.html",
        status=403,
        title=_("Form expired"),
        text=_(
            "This form is no longer valid (its security token does not match). "
            "Reload the page and try again."
        ),
        **context,
    )


def with_notice(path: str, **notice: str) -> str:
    """``path`` carrying a notice to the page a redirect lands on: ``notice=`` good news,
    ``bad=`` a refusal, already worded in the visitor's language."""
    return f"{path}?{urlencode(notice)}" if notice else path


def carried_notice(request: Request) -> dict[str, str] | None:
    """The notice a redirect carried (:func:`with_notice`), as the pages' templates show it."""
    bad = request.query_params.get("bad")
    text = bad or request.query_params.get("notice")
    return {"kind": "bad" if bad else "ok", "text": text} if text else None


def require(request: Request, seen: Visitor, roles: tuple[Role, ...], text: str) -> None:
    """A 403 page instead, unless the visitor's key has one of ``roles`` (``text`` says why,
    in the request's language: see :func:`smsbridge.web.i18n.translator`)."""
    if seen.who.role not in roles:
        _ = translator(request)
        raise PageInstead(
            pages(request).render(
                "message.html", status=403, title=_("Not allowed"), text=text, **seen.context()
            )
        )


async def found(load: Awaitable[_T], back: str) -> _T:
    """What ``load`` finds; a redirect to ``back`` instead when it raises :class:`NotFound`
    (a page of something deleted meanwhile, or a mistyped id)."""
    try:
        return await load
    except NotFound:
        raise PageInstead(RedirectResponse(back, status_code=303)) from None


def admin_only(request: Request, seen: Visitor) -> None:
    _ = translator(request)
    require(
        request,
        seen,
        (Role.ADMIN,),
        _(
            "This screen is for admin keys (channels and credentials hold provider secrets); "
            "this key's role is %(role)s.",
            role=seen.who.role.value,
        ),
    )


def refusal_status(exc: InvalidInput | Conflict) -> int:
    """A form refused for a clash (a name taken) answers 409, like the API; otherwise 422."""
    return 409 if isinstance(exc, Conflict) else 422


def field_errors(exc: InvalidInput | Conflict) -> dict[str, str]:
    """The problems by field (a name clash included), first one per field."""
    found: dict[str, str] = {}
    for error in exc.errors or [FieldError("", exc.message)]:
        found.setdefault(error.field, error.message)
    return found
