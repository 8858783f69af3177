"""``/api/v1/campaigns`` (role sender; reads for viewer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse, Response

from smsbridge.api.deps import require, services
from smsbridge.api.messages import idempotency_of
from smsbridge.api.problems import UNREADABLE_BODY
from smsbridge.api.schemas.campaigns import CampaignIn, CampaignList, CampaignOut, ExclusionList
from smsbridge.services.api_keys import Principal, Role
from smsbridge.services.catalog import ServiceCatalog

router = APIRouter(prefix="/api/v1", tags=["campaigns"])


@router.post("/campaigns", status_code=201, response_model=CampaignOut, responses=UNREADABLE_BODY)
async def create_campaign(
    body: CampaignIn,
    _who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """Create a draft; nothing is sent before ``launch``."""
    return await svc.campaigns.create(body.model_dump(exclude_unset=True))


@router.get("/campaigns", response_model=CampaignList)
async def list_campaigns(
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None),
    status: str | None = Query(None),
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    page = await svc.campaigns.list(limit=limit, cursor=cursor, status=status)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(
    campaign_id: str,
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """The campaign with live counts (per message status, targeted, excluded by reason)."""
    return await svc.campaigns.get(campaign_id)


@router.post("/campaigns/{campaign_id}/launch", status_code=202, response_model=CampaignOut)
async def launch_campaign(
    campaign_id: str,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> JSONResponse:
    """Start the fan-out (in the background). Launching twice changes nothing."""
    idempotency = idempotency_of(
        idempotency_key, who, f"POST /api/v1/campaigns/{campaign_id}/launch", {}
    )
    status, view = await svc.campaigns.launch_once(campaign_id, idempotency=idempotency)
    return JSONResponse(CampaignOut.model_validate(view).model_dump(mode="json"), status)


@router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignOut)
async def cancel_campaign(
    campaign_id: str,
    _who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """Stop the fan-out and cancel the messages not yet handed to a worker."""
    return await svc.campaigns.cancel(campaign_id)


@router.delete("/campaigns/{campaign_id}", status_code=204, response_class=Response)
async def delete_campaign(
    campaign_id: str,
    _who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """Delete a draft campaign (409 once launched: it is kept for its report)."""
    await svc.campaigns.delete(campaign_id)
    return Response(status_code=204)


@router.get("/campaigns/{campaign_id}/exclusions", response_model=ExclusionList)
async def list_exclusions(
    campaign_id: str,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None),
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """Audience members the campaign did not message, with the reason."""
    page = await svc.campaigns.exclusions(campaign_id, limit=limit, cursor=cursor)
    return {"items": page.items, "next_cursor": page.next_cursor}
