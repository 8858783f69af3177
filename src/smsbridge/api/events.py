"""``/api/v1/event-endpoints`` (role admin): where smsbridge posts signed events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from smsbridge.api.deps import require, services
from smsbridge.api.problems import UNREADABLE_BODY
from smsbridge.api.schemas.events import (
    CallbackSecretOut,
    EventDeliveryList,
    EventDeliveryOut,
    EventEndpointIn,
    EventEndpointList,
    EventEndpointOut,
    RotateSecretIn,
)
from smsbridge.domain.events import DEFAULT_OVERLAP
from smsbridge.services.api_keys import Role
from smsbridge.services.catalog import ServiceCatalog

router = APIRouter(
    prefix="/api/v1", tags=["event endpoints"], dependencies=[Depends(require(Role.ADMIN))]
)


@router.post(
    "/event-endpoints",
    status_code=201,
    response_model=EventEndpointOut,
    response_model_exclude_none=False,
    responses=UNREADABLE_BODY,
)
async def create_endpoint(
    body: EventEndpointIn, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    """The endpoint, with its signing secret ``secret``: shown here once (later reads show
    ``secret_hint``)."""
    return await svc.events.create(body.model_dump(exclude_unset=True))


@router.get("/event-endpoints", response_model=EventEndpointList)
async def list_endpoints(
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    page = await svc.events.list(limit=limit, cursor=cursor)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/event-endpoints/callback-secret", response_model=CallbackSecretOut)
async def callback_secret(svc: ServiceCatalog = Depends(services)) -> dict[str, Any]:
    """The secret that signs events posted to a message's ``callback_url``, derived from the
    first of SMSBRIDGE_SECRET_KEYS; while older keys stay listed after it (a key rotation),
    the secrets derived from them sign too, so receivers can switch at their own pace."""
    current, *previous = svc.events.callback_secrets()
    return {"secret": current, "previous_secrets": previous}


@router.get("/event-endpoints/{endpoint_id}", response_model=EventEndpointOut)
async def get_endpoint(endpoint_id: str, svc: ServiceCatalog = Depends(services)) -> dict[str, Any]:
    return await svc.events.get(endpoint_id)


@router.patch(
    "/event-endpoints/{endpoint_id}", response_model=EventEndpointOut, responses=UNREADABLE_BODY
)
async def patch_endpoint(
    endpoint_id: str, body: EventEndpointIn, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    """Change ``url``, ``event_types``, ``description`` or ``enabled`` (enabling again clears
    an automatic disabling's notice)."""
    return await svc.events.update(endpoint_id, body.model_dump(exclude_unset=True))


@router.delete("/event-endpoints/{endpoint_id}", status_code=204, response_class=Response)
async def delete_endpoint(endpoint_id: str, svc: ServiceCatalog = Depends(services)) -> Response:
    await svc.events.delete(endpoint_id)
    return Response(status_code=204)


@router.post(
    "/event-endpoints/{endpoint_id}/rotate-secret",
    response_model=EventEndpointOut,
    responses=UNREADABLE_BODY,
)
async def rotate_secret(
    endpoint_id: str, body: RotateSecretIn | None = None, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    """A new signing secret, shown once; the previous one keeps signing beside it (two
    signatures per request) for ``overlap_seconds`` (default a day)."""
    seconds = body.overlap_seconds if body is not None else None
    overlap = DEFAULT_OVERLAP if seconds is None else timedelta(seconds=seconds)
    return await svc.events.rotate_secret(endpoint_id, overlap)


@router.post("/event-endpoints/{endpoint_id}/test", response_model=EventDeliveryOut)
async def send_test(endpoint_id: str, svc: ServiceCatalog = Depends(services)) -> dict[str, Any]:
    """Post an ``endpoint.test`` event now; the answer is its delivery after the first attempt."""
    return await svc.events.send_test(endpoint_id)


@router.get("/event-endpoints/{endpoint_id}/deliveries", response_model=EventDeliveryList)
async def list_deliveries(
    endpoint_id: str,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None),
    status: str | None = Query(None, description="pending | delivered | failed | dead"),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """The endpoint's deliveries, newest first: status, attempts, the last answer."""
    page = await svc.events.deliveries(endpoint_id, limit=limit, cursor=cursor, status=status)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get(
    "/event-endpoints/{endpoint_id}/deliveries/{delivery_id}", response_model=EventDeliveryOut
)
async def get_delivery(
    endpoint_id: str, delivery_id: str, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    return await svc.events.delivery(endpoint_id, delivery_id)


@router.post(
    "/event-endpoints/{endpoint_id}/deliveries/{delivery_id}/replay",
    response_model=EventDeliveryOut,
)
async def replay_delivery(
    endpoint_id: str, delivery_id: str, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    """A failed or dead delivery sent again (same ``webhook-id``): pending, due now; 409 for
    one that is pending or delivered."""
    return await svc.events.replay(endpoint_id, delivery_id)
