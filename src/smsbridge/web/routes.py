"""Admin pages: sign-in, and Channels > API credentials (list, create, edit, delete, validate).

Plain forms posting back to the server (they work without JavaScript; htmx is loaded for the
pages that want partial updates). Every POST carries a CSRF token: the session's, or before
signing in, one bound to a pre-session cookie (see :mod:`smsbridge.web.session`). Every admin
response carries the security headers of :mod:`smsbridge.web.headers`. Errors from the
services are shown next to the field they name.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from smsbridge.domain.credential_parser import parse_credential
from smsbridge.domain.credentials import SECRET_AUTH_FIELDS, AuthType
from smsbridge.domain.payload import MAX_PAYLOAD_DEPTH
from smsbridge.domain.request import MessageValues, build_request
from smsbridge.errors import (
    AuthenticationRequired,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
)
from smsbridge.providers.presets import PRESETS, apply_preset, preset_names
from smsbridge.services.api_keys import Principal, Role
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.services.credentials import WEBHOOK_MAPPINGS
from smsbridge.web.credential_mappings import (
    INBOUND_PATHS,
    KINDS,
    REPORT_PATHS,
    STATUS_MAP,
    MappingForm,
    SampleResult,
    check_sample,
    fold_errors,
)
from smsbridge.web.headers import AdminSecurityHeaders
from smsbridge.web.session import (
    COOKIE,
    LIFETIME,
    SIGN_IN_COOKIE,
    SIGN_IN_LIFETIME,
    Session,
    SessionSigner,
    csrf_valid,
    new_sign_in_nonce,
)

HERE = Path(__file__).parent
STATIC = "/admin/static"
EMPTY_HEADER_ROWS = 1
_T = TypeVar("_T")
NO_CREDENTIAL = "/admin/credentials?bad=No+such+credential"
SECRET_PLACEHOLDER = "********"  # noqa: S105 - a mask, not a password

router = APIRouter(prefix="/admin", include_in_schema=False)


class Pages:
    """The admin's templates (autoescaped)."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("static", STATIC)
        context.setdefault("who", None)
        context.setdefault("title", "smsbridge")
        html = self._env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def fragment(self, template: str, **context: Any) -> str:
        """A partial page (what htmx swaps in)."""
        return self._env.get_template(template).render(**context)


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


def install(app: FastAPI) -> None:
    """Mount the admin on ``app``."""
    app.state.pages = Pages()
    app.add_middleware(AdminSecurityHeaders, prefix="/admin")
    app.mount(STATIC, StaticFiles(directory=HERE / "static"), name="admin-static")
    app.include_router(router)
    from smsbridge.web import (  # they import this module: registered once it is complete
        campaigns,
        compose,
        messages,
        profiles,
        reports,
        surfaces,
    )

    app.include_router(surfaces.router)
    app.include_router(compose.router)
    app.include_router(campaigns.router)
    app.include_router(profiles.router)
    app.include_router(messages.router)
    app.include_router(reports.router)

    async def sign_in_first(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse("/admin/login", status_code=303)

    async def page_instead(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageInstead)
        return exc.response

    app.add_exception_handler(SignInFirst, sign_in_first)
    app.add_exception_handler(PageInstead, page_instead)


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def _signer(svc: ServiceCatalog) -> SessionSigner:
    return SessionSigner(svc.box.derive("admin-session"))


async def visitor(request: Request, svc: ServiceCatalog = Depends(services)) -> Visitor:
    signer = _signer(svc)
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


async def _form(request: Request, seen: Visitor) -> FormData:
    """The posted form; a 403 page instead when its CSRF token is wrong."""
    form = await request.form()
    if not csrf_valid(seen.session, str(form.get("csrf") or "")):
        raise PageInstead(
            _pages(request).render(
                "message.html",
                status=403,
                title="Form expired",
                text="This form is no longer valid (its security token does not match). "
                "Reload the page and try again.",
                **seen.context(),
            )
        )
    return form


def require(request: Request, seen: Visitor, roles: tuple[Role, ...], text: str) -> None:
    """A 403 page instead, unless the visitor's key has one of ``roles``."""
    if seen.who.role not in roles:
        raise PageInstead(
            _pages(request).render(
                "message.html", status=403, title="Not allowed", text=text, **seen.context()
            )
        )


async def found(load: Awaitable[_T], back: str) -> _T:
    """What ``load`` finds; a redirect to ``back`` instead when it raises :class:`NotFound`
    (a page of something deleted meanwhile, or a mistyped id)."""
    try:
        return await load
    except NotFound:
        raise PageInstead(RedirectResponse(back, status_code=303)) from None


def _admin_only(request: Request, seen: Visitor) -> None:
    require(
        request,
        seen,
        (Role.ADMIN,),
        "This screen is for admin keys (channels and credentials hold provider secrets); "
        f"this key's role is {seen.who.role.value}.",
    )


# --- sign-in ----------------------------------------------------------------------------------


def _login_form(
    request: Request, svc: ServiceCatalog, *, status: int = 200, error: str | None = None
) -> Response:
    """The sign-in page, its token bound to the browser's pre-session cookie (a new one
    when it has none yet)."""
    nonce = request.cookies.get(SIGN_IN_COOKIE) or ""
    fresh = not (nonce.isascii() and 16 <= len(nonce) <= 64)
    if fresh:
        nonce = new_sign_in_nonce()
    response = _pages(request).render(
        "login.html",
        status=status,
        title="Sign in",
        error=error,
        sign_in_token=_signer(svc).sign_in_token(nonce),
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
    signer = _signer(svc)
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
    await _form(request, seen)  # only the CSRF check: no field is read
    await svc.api_keys.close_session(seen.session.session_id)  # a copied cookie ends too
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/admin")
    return response


@router.get("")
async def home(request: Request, seen: Visitor = Depends(visitor)) -> Response:
    target = "/admin/credentials" if seen.who.role is Role.ADMIN else "/admin/messages"
    return RedirectResponse(target, status_code=303)


# --- credentials -------------------------------------------------------------------------------


@dataclass
class HeaderRow:
    label: str = ""
    type: str = "static"
    value: str = ""
    hint: str = ""


AUTH_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "oauth2_client_credentials": ("token_url", "client_id", "scope", "client_auth"),
    "hmac": (
        "algorithm",
        "encoding",
        "signature_header",
        "signature_prefix",
        "timestamp_header",
        "timestamp_format",
        "string_to_sign",
    ),
}
"""Non-secret settings of the auth types that have more than one or two."""


@dataclass
class CredentialForm:
    """What the form shows: plain values; secrets never (only hints)."""

    preset: str = ""
    name: str = ""
    provider_app_id: str = ""
    provider_name: str = ""
    provider_url: str = ""
    auth_type: str = "bearer"
    auth_scheme: str = ""
    auth_username: str = ""
    auth_header: str = ""
    auth_fields: dict[str, str] = field(default_factory=dict)
    """The other non-secret settings of the OAuth2 and HMAC types, by name."""
    content_type: str = "application/json"
    payload: str = ""
    message_id_path: str = ""
    headers: list[HeaderRow] = field(default_factory=list)
    hints: dict[str, str] = field(default_factory=dict)
    mappings: MappingForm = field(default_factory=MappingForm)

    @classmethod
    def of_document(cls, document: dict[str, Any]) -> CredentialForm:
        auth = document.get("auth") or {}
        hints = {
            f"auth.{name}": _set_hint(value)
            for name, value in auth.items()
            if isinstance(value, dict) and value.get("set")
        }
        webhook_secret = document.get("webhook_secret")
        if isinstance(webhook_secret, dict) and webhook_secret.get("set"):
            hints["webhook_secret"] = _set_hint(webhook_secret)
        headers = []
        for header in document.get("headers") or []:
            value = header.get("value")
            if isinstance(value, dict):
                headers.append(HeaderRow(header["label"], "secret", "", _set_hint(value)))
            else:
                headers.append(
                    HeaderRow(header["label"], header.get("type", "static"), str(value or ""))
                )
        payload = document.get("payload", "")
        return cls(
            preset=str(document.get("preset") or ""),
            name=str(document.get("name") or ""),
            provider_app_id=str(document.get("provider_app_id") or ""),
            provider_name=str(document.get("provider_name") or ""),
            provider_url=str(document.get("provider_url") or ""),
            auth_type=str(auth.get("type") or "none"),
            auth_scheme=str(auth.get("scheme") or "") if auth.get("type") == "bearer" else "",
            auth_username=str(auth.get("username") or ""),
            auth_header=str(auth.get("header") or ""),
            auth_fields={
                name: str(auth.get(name) or "")
                for names in AUTH_TEXT_FIELDS.values()
                for name in names
                if isinstance(auth.get(name), str)
            },
            content_type=str(document.get("content_type") or "application/json"),
            payload=payload
            if isinstance(payload, str)
            else json.dumps(payload, indent=2, ensure_ascii=False),
            message_id_path=str((document.get("response") or {}).get("message_id_path") or ""),
            headers=headers,
            hints=hints,
            mappings=MappingForm.of_document(document),
        )


def _set_hint(value: dict[str, Any]) -> str:
    """What the form says of a stored secret: set, and its last characters when long enough
    to show any."""
    last4 = str(value.get("last4") or "")
    return f"set (…{last4})" if last4 else "set"


def _read_form(form: FormData) -> tuple[CredentialForm, dict[str, Any], dict[str, str]]:
    """(what to show again, the credential document, early errors) from a posted form.

    Secret inputs left empty are left out of the document, so an edit keeps the stored value.
    """
    text = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    shown = CredentialForm(
        preset=text.get("preset", ""),
        name=text.get("name", ""),
        provider_app_id=text.get("provider_app_id", ""),
        provider_name=text.get("provider_name", ""),
        provider_url=text.get("provider_url", ""),
        auth_type=text.get("auth_type", "none"),
        auth_scheme=text.get("auth_scheme", ""),
        auth_username=text.get("auth_username", ""),
        auth_header=text.get("auth_header", ""),
        auth_fields={
            name: text.get(f"auth_{name}", "").replace("\r\n", "\n")
            for names in AUTH_TEXT_FIELDS.values()
            for name in names
        },
        content_type=text.get("content_type", "application/json"),
        payload=str(form.get("payload") or ""),
        message_id_path=text.get("message_id_path", ""),
        mappings=MappingForm.of_form(text),
    )
    mapping_part, errors = shown.mappings.document_part()
    document: dict[str, Any] = {
        "vendor": "custom",
        "name": shown.name,
        "provider_app_id": shown.provider_app_id,
        "provider_name": shown.provider_name,
        "provider_url": shown.provider_url,
        "content_type": shown.content_type,
    }
    payload_text = shown.payload.strip()
    try:
        document["payload"] = json.loads(payload_text) if payload_text else None
    except json.JSONDecodeError as exc:
        errors["payload"] = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except RecursionError:  # a document nested thousands deep: the domain's limit says how deep
        errors["payload"] = f"nested more than {MAX_PAYLOAD_DEPTH} levels deep"
    auth: dict[str, Any] = {"type": shown.auth_type}
    if shown.auth_type == "bearer":
        if shown.auth_scheme:
            auth["scheme"] = shown.auth_scheme
        if text.get("auth_token"):
            auth["token"] = text["auth_token"]
    elif shown.auth_type == "basic":
        auth["username"] = shown.auth_username
        if text.get("auth_password"):
            auth["password"] = text["auth_password"]
    elif shown.auth_type == "api_key":
        auth["header"] = shown.auth_header
        if text.get("auth_key"):
            auth["key"] = text["auth_key"]
    elif shown.auth_type in AUTH_TEXT_FIELDS:
        for name in AUTH_TEXT_FIELDS[shown.auth_type]:
            if shown.auth_fields.get(name):
                auth[name] = shown.auth_fields[name]
        for name in SECRET_AUTH_FIELDS[AuthType(shown.auth_type)]:
            if text.get(f"auth_{name}"):
                auth[name] = text[f"auth_{name}"]
    document["auth"] = auth
    headers = []
    for index in range(_header_rows(text)):
        label = text.get(f"header_label_{index}", "")
        kind = text.get(f"header_type_{index}", "static")
        value = text.get(f"header_value_{index}", "")
        shown.headers.append(HeaderRow(label, kind, "" if kind == "secret" else value))
        if label:
            header: dict[str, Any] = {"label": label, "type": kind}
            if value or kind == "static":
                header["value"] = value
            headers.append(header)
    document["headers"] = headers
    if text.get("webhook_secret"):  # left empty: the stored one is kept
        document["webhook_secret"] = text["webhook_secret"]
    if shown.message_id_path:
        document["response"] = {"message_id_path": shown.message_id_path}
    # Mappings left empty are left out: on creation a preset's apply (an edit clears them).
    document.update((k, v) for k, v in mapping_part.items() if v is not None)
    if shown.preset:
        document["preset"] = shown.preset
    return shown, document, errors


def _header_rows(text: dict[str, str]) -> int:
    """How many header rows the form posted (at most 50): its ``header_rows`` field, or when
    that is missing or not a number, the rows actually present."""
    try:
        rows = int(text.get("header_rows", ""))
    except ValueError:
        rows = 0
        while rows < 50 and f"header_label_{rows}" in text:
            rows += 1
    return max(0, min(rows, 50))


def _form_page(
    request: Request,
    seen: Visitor,
    shown: CredentialForm,
    *,
    credential_id: str | None,
    errors: dict[str, str] | None = None,
    preview: Any = None,
    sample: SampleResult | None = None,
    status: int = 200,
) -> Response:
    while len([h for h in shown.headers if not h.label]) < EMPTY_HEADER_ROWS:
        shown.headers.append(HeaderRow())
    errors = fold_errors(errors or {})
    shown_fields = {
        "name",
        "provider_app_id",
        "provider_url",
        "payload",
        "auth.type",
        "auth.token",
        "auth.username",
        "auth.password",
        "auth.header",
        "auth.key",
        *(f"auth.{name}" for names in AUTH_TEXT_FIELDS.values() for name in names),
        "auth.client_secret",
        "auth.secret",
        "headers",
        "response.message_id_path",
        *(f"inbound.{name}" for name in INBOUND_PATHS),
        *(f"delivery_reports.{name}" for name in REPORT_PATHS),
        STATUS_MAP,
        "sample_body",
        "sample_type",
        "webhook_secret",
    }
    return _pages(request).render(
        "credential_form.html",
        status=status,
        title="API credentials",
        form=shown,
        errors=errors,
        shown=shown_fields,
        presets=[p for p in preset_names() if p != "sandbox"] + ["sandbox"],
        credential_id=credential_id,
        action=f"/admin/credentials/{credential_id}" if credential_id else "/admin/credentials/new",
        preview=preview,
        sample=sample,
        **seen.context(),
    )


def _sample_page(
    request: Request,
    seen: Visitor,
    shown: CredentialForm,
    document: dict[str, Any],
    errors: dict[str, str],
    *,
    action: str,
    credential_id: str | None,
) -> Response:
    """The form again, with what its sample webhook gives under its (unsaved) mappings."""
    sample = None
    try:
        sample = check_sample(shown.mappings, KINDS[action], apply_preset(document))
    except InvalidInput as exc:
        errors = {**errors, **_errors(exc)}
    return _form_page(
        request,
        seen,
        shown,
        credential_id=credential_id,
        errors=errors,
        sample=sample,
        status=422 if errors else 200,
    )


def _status(exc: InvalidInput | Conflict) -> int:
    """A form refused for a clash (a name taken) answers 409, like the API; otherwise 422."""
    return 409 if isinstance(exc, Conflict) else 422


def _errors(exc: InvalidInput | Conflict) -> dict[str, str]:
    """The problems by field (a name clash included), first one per field."""
    found: dict[str, str] = {}
    for error in exc.errors or [FieldError("", exc.message)]:
        found.setdefault(error.field, error.message)
    return found


def _preview(document: dict[str, Any], allow_private: bool) -> Any:
    """The request the form would make, secrets masked (missing secrets stand masked too)."""
    candidate = apply_preset(document)
    auth = dict(candidate.get("auth") or {})
    try:
        secret_names = SECRET_AUTH_FIELDS[AuthType(str(auth.get("type")))]
    except ValueError:
        secret_names = ()
    for name in secret_names:
        if name not in auth:
            auth[name] = SECRET_PLACEHOLDER
    candidate["auth"] = auth
    candidate["headers"] = [
        h if "value" in h else {**h, "value": SECRET_PLACEHOLDER}
        for h in candidate.get("headers") or []
    ]
    credential = parse_credential(candidate, allow_private_urls=allow_private)
    values = MessageValues("+33612345678", "+15550001111", "Hello from smsbridge", "msg_preview")
    request = build_request(credential, values, masked=True)
    return {
        "method": request.method,
        "url": request.url,
        "headers": dict(request.headers),
        "body": request.body.decode("utf-8", errors="replace"),
    }


@router.get("/credentials")
async def credentials_list(
    request: Request,
    notice: str | None = None,
    bad: str | None = None,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _admin_only(request, seen)
    page = await svc.credentials.list(limit=500)
    items = [
        {
            "id": v.id,
            "name": v.document.get("name", ""),
            "provider_name": v.document.get("provider_name", ""),
            "provider_url": v.document.get("provider_url", ""),
            "auth_type": (v.document.get("auth") or {}).get("type", "none"),
            "updated": v.updated_at.strftime("%Y-%m-%d %H:%M UTC"),
        }
        for v in page.items
    ]
    message = None
    if notice or bad:
        message = {"kind": "bad" if bad else "ok", "text": bad or notice}
    return _pages(request).render(
        "credentials.html", title="API credentials", items=items, notice=message, **seen.context()
    )


@router.get("/credentials/new")
async def credential_new(request: Request, seen: Visitor = Depends(visitor)) -> Response:
    _admin_only(request, seen)
    return _form_page(request, seen, CredentialForm(), credential_id=None)


@router.post("/credentials/new")
async def credential_create(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _admin_only(request, seen)
    form = await _form(request, seen)
    shown, document, errors = _read_form(form)
    action = str(form.get("do") or "save")
    if action == "preset" and shown.preset in PRESETS:
        filled = CredentialForm.of_document({**PRESETS[shown.preset], "name": shown.name})
        filled.preset = shown.preset
        return _form_page(request, seen, filled, credential_id=None)
    if action == "add_header":
        shown.headers.append(HeaderRow())
        return _form_page(request, seen, shown, credential_id=None)
    if action in KINDS:
        return _sample_page(
            request, seen, shown, document, errors, action=action, credential_id=None
        )
    if errors:
        return _form_page(request, seen, shown, credential_id=None, errors=errors, status=422)
    try:
        if action == "preview":
            preview = _preview(document, svc.settings.allow_private_provider_urls)
            return _form_page(request, seen, shown, credential_id=None, preview=preview)
        created = await svc.credentials.create(document)
    except (InvalidInput, Conflict) as exc:
        return _form_page(
            request, seen, shown, credential_id=None, errors=_errors(exc), status=_status(exc)
        )
    name = quote(str(created.document.get("name", "")))
    return RedirectResponse(f"/admin/credentials?notice=Created+{name}", status_code=303)


@router.get("/credentials/{credential_id}")
async def credential_edit(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _admin_only(request, seen)
    try:
        view = await svc.credentials.get(credential_id)
    except NotFound:
        return _pages(request).render(
            "message.html",
            status=404,
            title="Not found",
            text="No such credential.",
            back="/admin/credentials",
            **seen.context(),
        )
    return _form_page(
        request, seen, CredentialForm.of_document(view.document), credential_id=credential_id
    )


@router.post("/credentials/{credential_id}")
async def credential_update(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _admin_only(request, seen)
    form = await _form(request, seen)
    shown, document, errors = _read_form(form)
    document.pop("preset", None)
    current = await found(svc.credentials.get(credential_id), NO_CREDENTIAL)
    shown.hints = CredentialForm.of_document(current.document).hints
    stored_headers = {h.label: h.hint for h in CredentialForm.of_document(current.document).headers}
    for row in shown.headers:
        row.hint = stored_headers.get(row.label, "") if row.type == "secret" else ""
    action = str(form.get("do") or "save")
    if action == "add_header":
        shown.headers.append(HeaderRow())
        return _form_page(request, seen, shown, credential_id=credential_id)
    if action in KINDS:
        return _sample_page(
            request, seen, shown, document, errors, action=action, credential_id=credential_id
        )
    for key in WEBHOOK_MAPPINGS:  # a mapping emptied in the form is removed
        document.setdefault(key, None)
    if errors:
        return _form_page(
            request, seen, shown, credential_id=credential_id, errors=errors, status=422
        )
    try:
        if action == "preview":
            preview = _preview(
                {**document, "preset": current.document.get("preset")},
                svc.settings.allow_private_provider_urls,
            )
            return _form_page(request, seen, shown, credential_id=credential_id, preview=preview)
        await svc.credentials.update(credential_id, document)
    except (InvalidInput, Conflict) as exc:
        return _form_page(
            request,
            seen,
            shown,
            credential_id=credential_id,
            errors=_errors(exc),
            status=_status(exc),
        )
    return RedirectResponse(f"/admin/credentials?notice=Saved+{quote(shown.name)}", status_code=303)


@router.get("/credentials/{credential_id}/delete")
async def credential_delete_page(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _admin_only(request, seen)
    view = await found(svc.credentials.get(credential_id), NO_CREDENTIAL)
    return _pages(request).render(
        "confirm_delete.html",
        title="Delete credentials",
        name=view.document.get("name", ""),
        credential_id=credential_id,
        **seen.context(),
    )


@router.post("/credentials/{credential_id}/delete")
async def credential_delete(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _admin_only(request, seen)
    await _form(request, seen)  # only the CSRF check: no field is read
    try:
        view = await svc.credentials.get(credential_id)
        await svc.credentials.delete(credential_id)
    except NotFound:
        return RedirectResponse(NO_CREDENTIAL, status_code=303)
    except Conflict as exc:
        return RedirectResponse(
            f"/admin/credentials?bad={quote('Not deleted: ' + exc.message)}", status_code=303
        )
    name = quote(str(view.document.get("name", "")))
    return RedirectResponse(f"/admin/credentials?notice=Deleted+{name}", status_code=303)


@router.get("/credentials/{credential_id}/validate")
async def credential_validate_page(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _admin_only(request, seen)
    view = await found(svc.credentials.get(credential_id), NO_CREDENTIAL)
    return _pages(request).render(
        "validate.html",
        title="Validate connection",
        name=view.document.get("name", ""),
        credential_id=credential_id,
        **seen.context(),
    )


@router.post("/credentials/{credential_id}/validate")
async def credential_validate(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _admin_only(request, seen)
    form = await _form(request, seen)
    to = str(form.get("to") or "").strip()
    sender = str(form.get("sender") or "").strip() or None
    message = str(form.get("message") or "").strip() or "smsbridge connection test"
    context: dict[str, Any] = {"to": to, "sender": sender or "", "message": message}
    view = await found(svc.credentials.get(credential_id), NO_CREDENTIAL)
    try:
        context["result"] = await svc.credentials.test(
            credential_id, to=to, sender=sender, message=message
        )
    except InvalidInput as exc:
        context["error"] = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    return _pages(request).render(
        "validate.html",
        title="Validate connection",
        name=view.document.get("name", ""),
        credential_id=credential_id,
        **context,
        **seen.context(),
    )
