"""``/api/v1/surfaces`` (role admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from smsbridge.api.deps import require, services
from smsbridge.api.problems import UNREADABLE_BODY
from smsbridge.api.schemas.surfaces import SurfaceFields, SurfaceList, SurfaceOut
from smsbridge.services.api_keys import Role
from smsbridge.services.catalog import ServiceCatalog

router = APIRouter(prefix="/api/v1", tags=["surfaces"], dependencies=[Depends(require(Role.ADMIN))])


@router.post("/surfaces", status_code=201, response_model=SurfaceOut, responses=UNREADABLE_BODY)
async def create_surface(
    body: SurfaceFields, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    view = await svc.surfaces.create(body.model_dump(mode="json", exclude_none=True))
    return view.document()


@router.get("/surfaces", response_model=SurfaceList)
async def list_surfaces(
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    page = await svc.surfaces.list(limit=limit, cursor=cursor)
    return {"items": [v.document() for v in page.items], "next_cursor": page.next_cursor}


@router.get("/surfaces/{surface_id}", response_model=SurfaceOut)
async def get_surface(surface_id: str, svc: ServiceCatalog = Depends(services)) -> dict[str, Any]:
    return (await svc.surfaces.get(surface_id)).document()


@router.patch("/surfaces/{surface_id}", response_model=SurfaceOut, responses=UNREADABLE_BODY)
async def patch_surface(
    surface_id: str, body: SurfaceFields, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    patch = body.model_dump(mode="json", exclude_unset=True)
    return (await svc.surfaces.update(surface_id, patch)).document()


@router.post("/surfaces/{surface_id}/rotate-webhook-tokens", response_model=SurfaceOut)
async def rotate_webhook_tokens(
    surface_id: str, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    """New unguessable tokens in both webhook URLs; the old URLs answer 404 from now on."""
    return (await svc.surfaces.rotate_tokens(surface_id)).document()


@router.delete("/surfaces/{surface_id}", status_code=204, response_class=Response)
async def delete_surface(surface_id: str, svc: ServiceCatalog = Depends(services)) -> Response:
    await svc.surfaces.delete(surface_id)
    return Response(status_code=204)
