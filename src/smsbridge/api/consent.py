"""``/api/v1/consent``: who opted out of which sender; manual changes by an admin, audited."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from smsbridge.api.deps import require, services
from smsbridge.api.problems import UNREADABLE_BODY
from smsbridge.api.schemas.base import Strict
from smsbridge.errors import InvalidInput
from smsbridge.services.api_keys import Principal, Role
from smsbridge.services.catalog import ServiceCatalog
from smsbridge.services.consent import ConsentStatus

router = APIRouter(prefix="/api/v1", tags=["consent"])


class ConsentIn(Strict):
    sender: str = Field(description="the surface sender the change applies to", examples=["Acme"])
    status: Literal["opted_out", "opted_in"]
    note: str | None = Field(None, max_length=500, description="why (kept in the audit trail)")


@router.get("/consent", response_class=StreamingResponse)
async def export_consent(
    status: str = Query("opted_out", description="only opted_out is listed"),
    format: str = Query("ndjson", description="ndjson or csv"),
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> StreamingResponse:
    """Every current opt-out (sender, phone, source, keyword, since), streamed."""
    if status != "opted_out":
        raise InvalidInput.one("status", "only opted_out can be exported")
    if format not in ("ndjson", "csv"):
        raise InvalidInput.one("format", "must be ndjson or csv")
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(svc.consent.export(format), media_type=media)


@router.get("/consent/{phone}")
async def get_consent(
    phone: str,
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """The senders this number opted out of, and its consent history (newest first)."""
    return await svc.consent.status(phone)


@router.put("/consent/{phone}", responses=UNREADABLE_BODY)
async def put_consent(
    phone: str,
    body: ConsentIn,
    who: Principal = Depends(require(Role.ADMIN)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """Opt a number out of a sender, or back in, by hand; recorded with the API key's id."""
    await svc.consent.change(
        phone,
        sender=body.sender,
        status=ConsentStatus(body.status),
        source="admin",
        actor=who.key_id,
        note=body.note,
    )
    return await svc.consent.status(phone)
