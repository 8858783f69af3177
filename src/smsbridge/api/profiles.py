"""``/api/v1/profiles`` (role sender; reads for viewer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from smsbridge.api.deps import require, services
from smsbridge.api.problems import UNREADABLE_BODY
from smsbridge.api.schemas.profiles import ImportOut, ProfileIn, ProfileList, ProfileOut
from smsbridge.services.api_keys import Principal, Role
from smsbridge.services.catalog import ServiceCatalog

router = APIRouter(prefix="/api/v1", tags=["profiles"])

_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string"},
                "example": '{"external_id": "u1", "phone": "+33612345678", '
                '"attributes": {"firstName": "Ana"}}\n',
            },
            "text/csv": {
                "schema": {"type": "string"},
                "example": "external_id,phone,firstName\nu1,+33612345678,Ana\n",
            },
        },
    }
}


@router.post("/profiles/import", response_model=ImportOut, openapi_extra=_IMPORT_BODY)
async def import_profiles(
    request: Request,
    _who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """Import NDJSON or CSV, streamed: good lines are upserted in batches, bad lines reported
    with their line number, field and message."""
    result = await svc.profiles.import_stream(request.stream(), request.headers.get("content-type"))
    return {
        "imported": result.imported,
        "lines": result.lines,
        "error_count": result.error_count,
        "errors": [{"line": e.line, "field": e.field, "message": e.message} for e in result.errors],
    }


@router.get("/profiles", response_model=ProfileList)
async def list_profiles(
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None),
    phone: str | None = Query(None, description="only the profiles with this number"),
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    page = await svc.profiles.list(limit=limit, cursor=cursor, phone=phone)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.put("/profiles/{external_id}", response_model=ProfileOut, responses=UNREADABLE_BODY)
async def put_profile(
    external_id: str,
    body: ProfileIn,
    _who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """Create or replace a profile."""
    return await svc.profiles.put(external_id, body.model_dump(exclude_unset=True))


@router.get("/profiles/{external_id}", response_model=ProfileOut)
async def get_profile(
    external_id: str,
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    return await svc.profiles.get(external_id)


@router.delete("/profiles/{external_id}", status_code=204)
async def delete_profile(
    external_id: str,
    _who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    await svc.profiles.delete(external_id)
    return Response(status_code=204)
