"""Reports (role viewer): campaign and surface numbers, and the per-message CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from smsbridge.api.deps import require, services
from smsbridge.api.schemas.reports import CampaignReport, SurfaceReport
from smsbridge.services.api_keys import Principal, Role
from smsbridge.services.catalog import ServiceCatalog

router = APIRouter(prefix="/api/v1", tags=["reports"])
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "one row per message"}
}


@router.get("/campaigns/{campaign_id}/report", response_model=CampaignReport)
async def campaign_report(
    campaign_id: str,
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    return await svc.reports.campaign(campaign_id)


@router.get("/campaigns/{campaign_id}/report.csv", response_class=StreamingResponse, responses=_CSV)
async def campaign_report_csv(
    campaign_id: str,
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> StreamingResponse:
    scope = await svc.reports.campaign_scope(campaign_id)
    return StreamingResponse(
        svc.reports.csv_rows(scope),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}.csv"'},
    )


@router.get("/surfaces/{surface_id}/report", response_model=SurfaceReport)
async def surface_report(
    surface_id: str,
    start: datetime | None = Query(None, alias="from", description="default: 7 days before `to`"),
    end: datetime | None = Query(None, alias="to", description="default: now"),
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """The surface's messages created in ``[from, to)``."""
    return await svc.reports.surface(surface_id, start=start, end=end)


@router.get("/surfaces/{surface_id}/report.csv", response_class=StreamingResponse, responses=_CSV)
async def surface_report_csv(
    surface_id: str,
    start: datetime | None = Query(None, alias="from"),
    end: datetime | None = Query(None, alias="to"),
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> StreamingResponse:
    scope = await svc.reports.surface_scope(surface_id, start=start, end=end)
    return StreamingResponse(
        svc.reports.csv_rows(scope),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{surface_id}.csv"'},
    )
