"""Admin pages: Profiles (listed a page at a time, found by phone or external id, consent state,
import with progress).

The import form posts the file as ordinary multipart (it works without JavaScript); a few lines
of script send the same form with ``XMLHttpRequest`` to show the upload's progress.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from smsbridge.errors import FieldError, InvalidInput, NotFound
from smsbridge.services.api_keys import Role
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.services.consent import ConsentStatus
from smsbridge.web.i18n import N_, translator
from smsbridge.web.shell import Visitor, pages, posted_form, require, visitor

router = APIRouter(prefix="/admin", include_in_schema=False)
CHUNK = 256 * 1024
PAGE = 50
"""Profiles a page (the API's default page size)."""
_TYPES = {".csv": "text/csv", ".ndjson": "application/x-ndjson", ".jsonl": "application/x-ndjson"}
# Where an opt-out came from (see smsbridge.services.consent), in words.
SOURCES = {
    "admin": N_("by an admin"),
    "keyword": N_("by keyword"),
    "provider": N_("reported by the provider"),
}


def _can_import(seen: Visitor) -> bool:
    return seen.who.role in (Role.ADMIN, Role.SENDER)


@router.get("/profiles")
async def profiles_page(
    request: Request,
    q: str = "",
    cursor: str = "",
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """A search (by phone number or external id), or else every profile, a page at a time
    by external id, as ``GET /api/v1/profiles`` pages them."""
    _ = translator(request)
    query = q.strip()
    items: list[dict[str, Any]] = []
    next_cursor: str | None = None
    error = None
    try:
        if not query:
            page = await svc.profiles.list(limit=PAGE, cursor=cursor or None)
            items, next_cursor = page.items, page.next_cursor
        elif query.startswith("+") or query.replace(" ", "").isdigit():
            page = await svc.profiles.list(limit=PAGE, cursor=cursor or None, phone=query)
            items, next_cursor = page.items, page.next_cursor
        else:
            items = [await svc.profiles.get(query)]
    except NotFound:
        items = []
    except InvalidInput as exc:
        if any(e.field == "cursor" for e in exc.errors):
            error = _("This page link is not valid (any more): start again from the first page.")
        else:
            error = "; ".join(_.said(e.message) for e in exc.errors)
    return pages(request).render(
        "profiles.html",
        title=_("Profiles"),
        q=query,
        cursor=cursor,
        next_url=_page_url(query, next_cursor) if next_cursor else None,
        first_url=_page_url(query, None) if cursor else None,
        items=[
            {**p, "attributes": json.dumps(p["attributes"], ensure_ascii=False)[:200]}
            for p in items
        ],
        total=await svc.profiles.count(),
        error=error,
        can_import=_can_import(seen),
        **seen.context(),
    )


def _page_url(query: str, cursor: str | None) -> str:
    params = {k: v for k, v in (("q", query), ("cursor", cursor)) if v}
    return "/admin/profiles" + (f"?{urlencode(params)}" if params else "")


async def _senders(svc: ServiceCatalog) -> list[str]:
    """The senders of the surfaces (first page), for the consent form's picker."""
    surfaces = (await svc.surfaces.list(limit=200)).items
    return sorted({view.surface.sender for view in surfaces})


@router.get("/profiles/{external_id}")
async def profile_detail(
    external_id: str,
    request: Request,
    notice: str = "",
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _ = translator(request)
    try:
        profile = await svc.profiles.get(external_id)
    except (NotFound, InvalidInput):
        return pages(request).render(
            "message.html",
            status=404,
            title=_("Not found"),
            text=_("No such profile."),
            back="/admin/profiles",
            **seen.context(),
        )
    consent = await svc.consent.status(profile["phone"])
    return pages(request).render(
        "profile_detail.html",
        title=_("Profile %(id)s", id=profile["external_id"]),
        p=profile,
        attributes=json.dumps(profile["attributes"], indent=2, ensure_ascii=False),
        consent=consent,
        sources={name: _(label) for name, label in SOURCES.items()},
        notice=notice,
        senders=await _senders(svc) if seen.who.role == Role.ADMIN else [],
        can_change_consent=seen.who.role == Role.ADMIN,
        **seen.context(),
    )


@router.post("/profiles/{external_id}/consent")
async def profile_consent(
    external_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """Opt the profile's number out of a sender (or back in) by hand, audited with the key."""
    _ = translator(request)
    require(request, seen, (Role.ADMIN,), _("Changing consent by hand needs an admin key."))
    form = await posted_form(request, seen)
    back = f"/admin/profiles/{quote(external_id, safe='')}"
    try:
        profile = await svc.profiles.get(external_id)
        sender = str(form.get("sender") or "").strip()
        status = ConsentStatus(str(form.get("status") or ""))
        if not sender:
            raise InvalidInput([FieldError("sender", _("Choose a sender."))])
        await svc.consent.change(
            profile["phone"],
            sender=sender,
            status=status,
            source="admin",
            actor=seen.who.key_id,
            note=str(form.get("note") or "").strip() or None,
        )
    except NotFound:
        text = _("No such profile.")
    except InvalidInput as exc:
        text = "; ".join(_.said(e.message) for e in exc.errors)
    except ValueError:
        text = _("Choose opt out or opt in.")
    else:
        if status is ConsentStatus.OPTED_OUT:
            notice = _("%(phone)s opted out of %(sender)s.", phone=profile["phone"], sender=sender)
        else:
            notice = _(
                "%(phone)s opted back in to %(sender)s.", phone=profile["phone"], sender=sender
            )
        return RedirectResponse(f"{back}?notice={quote(notice)}", status_code=303)
    return pages(request).render(
        "message.html",
        status=422,
        title=_("Not changed"),
        text=text,
        back=back,
        **seen.context(),
    )


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


@router.post("/profiles/import")
async def profiles_import(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _ = translator(request)
    if not _can_import(seen):
        return pages(request).render(
            "message.html",
            status=403,
            title=_("Not allowed"),
            text=_("Importing profiles needs a sender or admin key."),
            **seen.context(),
        )
    form = await posted_form(request, seen)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return pages(request).render(
            "message.html",
            status=422,
            title=_("No file"),
            text=_("Choose a .csv or .ndjson file."),
            back="/admin/profiles",
            **seen.context(),
        )
    suffix = "." + upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
    content_type = _TYPES.get(suffix)
    if content_type is None:
        return pages(request).render(
            "message.html",
            status=422,
            title=_("Unknown format"),
            text=_("The file must end in .csv, .ndjson or .jsonl."),
            back="/admin/profiles",
            **seen.context(),
        )
    result = await svc.profiles.import_stream(_chunks(upload), content_type)
    return pages(request).render(
        "import_result.html", title=_("Import finished"), result=result, **seen.context()
    )
