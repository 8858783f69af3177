"""Admin pages: Profiles (find by phone or external id, consent state, import with progress).

The import form posts the file as ordinary multipart (it works without JavaScript); a few lines
of script send the same form with ``XMLHttpRequest`` to show the upload's progress.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from smsbridge.api.deps import services
from smsbridge.errors import InvalidInput, NotFound
from smsbridge.services.api_keys import Role
from smsbridge.web.routes import Visitor, _form, _pages, visitor
from smsbridge.wiring import Services

router = APIRouter(prefix="/admin", include_in_schema=False)
CHUNK = 256 * 1024
_TYPES = {".csv": "text/csv", ".ndjson": "application/x-ndjson", ".jsonl": "application/x-ndjson"}


def _can_import(seen: Visitor) -> bool:
    return seen.who.role in (Role.ADMIN, Role.SENDER)


@router.get("/profiles")
async def profiles_page(
    request: Request,
    q: str = "",
    seen: Visitor = Depends(visitor),
    svc: Services = Depends(services),
) -> Response:
    query = q.strip()
    items: list[dict[str, Any]] = []
    error = None
    if query:
        try:
            if query.startswith("+") or query.replace(" ", "").isdigit():
                items = (await svc.profiles.list(limit=50, phone=query)).items
            else:
                items = [await svc.profiles.get(query)]
        except NotFound:
            items = []
        except InvalidInput as exc:
            error = "; ".join(e.message for e in exc.errors)
    return _pages(request).render(
        "profiles.html",
        title="Profiles",
        q=query,
        items=[
            {**p, "attributes": json.dumps(p["attributes"], ensure_ascii=False)[:200]}
            for p in items
        ],
        total=await svc.profiles.count(),
        error=error,
        can_import=_can_import(seen),
        **seen.context(),
    )


@router.get("/profiles/{external_id}")
async def profile_detail(
    external_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: Services = Depends(services),
) -> Response:
    try:
        profile = await svc.profiles.get(external_id)
    except (NotFound, InvalidInput):
        return _pages(request).render(
            "message.html",
            status=404,
            title="Not found",
            text="No such profile.",
            back="/admin/profiles",
            **seen.context(),
        )
    consent = await svc.consent.status(profile["phone"])
    return _pages(request).render(
        "profile_detail.html",
        title="Profile",
        p=profile,
        attributes=json.dumps(profile["attributes"], indent=2, ensure_ascii=False),
        consent=consent,
        **seen.context(),
    )


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


@router.post("/profiles/import")
async def profiles_import(
    request: Request, seen: Visitor = Depends(visitor), svc: Services = Depends(services)
) -> Response:
    if not _can_import(seen):
        return _pages(request).render(
            "message.html",
            status=403,
            title="Not allowed",
            text="Importing profiles needs a sender or admin key.",
            **seen.context(),
        )
    form = await _form(request, seen)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _pages(request).render(
            "message.html",
            status=422,
            title="No file",
            text="Choose a .csv or .ndjson file.",
            back="/admin/profiles",
            **seen.context(),
        )
    suffix = "." + upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
    content_type = _TYPES.get(suffix)
    if content_type is None:
        return _pages(request).render(
            "message.html",
            status=422,
            title="Unknown format",
            text="The file must end in .csv, .ndjson or .jsonl.",
            back="/admin/profiles",
            **seen.context(),
        )
    result = await svc.profiles.import_stream(_chunks(upload), content_type)
    return _pages(request).render(
        "import_result.html", title="Import finished", result=result, **seen.context()
    )
