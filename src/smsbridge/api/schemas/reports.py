"""Campaign and surface reports: counts, rates, a timeline, per credential."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportRates(BaseModel):
    delivery: float
    bounce: float
    error: float
    click: float


class TimelinePoint(BaseModel):
    at: datetime
    sent: int
    delivered: int
    clicks: int


class CredentialCounts(BaseModel):
    sent: int = Field(description="accepted by the provider: sent, delivered or undelivered")
    failed: int


class ReportOut(BaseModel):
    targeted: int
    excluded: int
    excluded_reasons: dict[str, int]
    sent: int = Field(description="accepted by the provider: sent, delivered or undelivered")
    delivered: int
    bounced: int = Field(description="undelivered")
    errors: int = Field(description="failed")
    error_reasons: dict[str, int]
    pending: int
    suppressed: int
    cancelled: int
    clicks: int = Field(description="human clicks (link-preview bots left out)")
    unique_clicks: int = Field(description="messages clicked at least once by a human")
    bot_clicks: int
    opt_outs: int
    segments: int
    rates: ReportRates
    bucket: Literal["minute", "hour", "day"]
    timeline: list[TimelinePoint]
    by_credential: dict[str, CredentialCounts] = Field(
        default_factory=dict,
        description="per credential id, counted on the credential of each message's last attempt",
    )


class CampaignReport(ReportOut):
    campaign_id: str
    status: str


class SurfaceReport(ReportOut):
    surface_id: str
    from_: datetime = Field(alias="from")
    to: datetime

    model_config = ConfigDict(populate_by_name=True)
