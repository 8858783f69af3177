"""Admin page: Compose — a message with a live preview (personalized for a profile), the
segment and encoding counter, and the characters forcing UCS-2 highlighted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from smsbridge.errors import InvalidInput
from smsbridge.services.api_keys import Role
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.services.message_rows import SendRequest
from smsbridge.web.i18n import translator
from smsbridge.web.shell import Visitor, pages, posted_form, require, visitor
from smsbridge.web.surfaces import surface_choices

router = APIRouter(prefix="/admin", include_in_schema=False)


def _refused(request: Request, seen: Visitor) -> None:
    _ = translator(request)
    require(request, seen, (Role.ADMIN, Role.SENDER), _("Sending needs a sender or admin key."))


def _fields(form: Any) -> dict[str, str]:
    return {k: str(form.get(k) or "").strip() for k in ("surface_id", "to", "profile_id")} | {
        "body": str(form.get("body") or "")
    }


def _request(fields: dict[str, str]) -> SendRequest:
    return SendRequest(
        surface_id=fields["surface_id"],
        to=fields["to"] or None,
        body=fields["body"],
        profile_id=fields["profile_id"] or None,
    )


async def _preview(svc: ServiceCatalog, fields: dict[str, str]) -> dict[str, Any] | None:
    if not fields["body"].strip() or not fields["surface_id"]:
        return None
    try:
        preview = await svc.messages.preview(_request(fields))
    except InvalidInput as exc:
        return {
            "marked": "",
            "characters": 0,
            "segments": 0,
            "encoding": "-",
            "ucs2_characters": [],
            "undefined": [],
            "errors": [{"field": e.field, "message": e.message} for e in exc.errors],
        }
    forcing = set(preview["ucs2_characters"])
    preview["marked"] = Markup("").join(
        Markup("<mark>{}</mark>").format(ch) if ch in forcing else escape(ch)
        for ch in preview["text"]
    )
    return preview


@router.get("/compose")
async def compose_page(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _refused(request, seen)
    surfaces = await surface_choices(svc)
    fields = {
        "surface_id": surfaces[0]["id"] if surfaces else "",
        "to": "",
        "profile_id": "",
        "body": "",
    }
    return pages(request).render(
        "compose.html",
        title=translator(request)("Compose"),
        surfaces=surfaces,
        form=fields,
        preview=None,
        **seen.context(),
    )


@router.post("/compose/preview")
async def compose_preview(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _refused(request, seen)
    form = await posted_form(request, seen)
    html = pages(request).fragment(
        "compose_preview.html", preview=await _preview(svc, _fields(form))
    )
    return HTMLResponse(html)


@router.post("/compose")
async def compose_send(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _refused(request, seen)
    form = await posted_form(request, seen)
    fields = _fields(form)
    error = None
    if str(form.get("do") or "") == "send":
        try:
            _, view = await svc.messages.send(_request(fields))
        except InvalidInput as exc:
            _ = translator(request)
            error = "; ".join(
                _("%(label)s: %(message)s", label=e.field, message=_.said(e.message))
                for e in exc.errors
            )
        else:
            return RedirectResponse(f"/admin/messages/{view['id']}", status_code=303)
    return pages(request).render(
        "compose.html",
        status=422 if error else 200,
        title=translator(request)("Compose"),
        surfaces=await surface_choices(svc),
        form=fields,
        preview=await _preview(svc, fields),
        error=error,
        **seen.context(),
    )
