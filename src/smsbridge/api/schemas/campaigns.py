"""Campaigns in and out, and the profiles a campaign left out (exclusions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from smsbridge.api.schemas.base import JsonObject, Strict
from smsbridge.domain.campaigns import MAX_THROTTLE, MIN_THROTTLE, CampaignStatus


class CampaignIn(Strict):
    name: str
    surface_id: str
    body: str = Field(examples=["Hi {{ profile.firstName }}, -20% today: https://acme.example/s"])
    audience: JsonObject = Field(
        examples=[
            {"all": True},
            {"profile_ids": ["u1", "u2"]},
            {"filter": {"attributes.country": "FR"}},
        ]
    )
    variables: JsonObject = Field(default_factory=dict)
    send_at: datetime | None = None
    throttle_per_second: float | None = Field(
        None,
        ge=MIN_THROTTLE,
        le=MAX_THROTTLE,
        allow_inf_nan=False,
        strict=True,  # true is not 1 message per second
        description="messages per second for this campaign, on top of the credential's limit",
    )


class CampaignOut(BaseModel):
    id: str
    name: str
    surface_id: str
    body: str
    variables: dict[str, Any]
    audience: dict[str, Any]
    send_at: datetime | None
    throttle_per_second: float | None
    status: CampaignStatus
    created_at: datetime
    updated_at: datetime
    launched_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    fanout_done: bool
    counts: dict[str, int] | None = Field(
        None, description="targeted, excluded, pending and one count per message status"
    )
    excluded_reasons: dict[str, int] | None = None


class CampaignList(BaseModel):
    items: list[CampaignOut]
    next_cursor: str | None


class ExclusionOut(BaseModel):
    profile_id: str
    phone: str | None
    reason: str
    detail: str | None


class ExclusionList(BaseModel):
    items: list[ExclusionOut]
    next_cursor: str | None
