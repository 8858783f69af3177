"""Surfaces in and out: sender, route, link tracking, keywords and replies, quiet hours,
frequency cap."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from smsbridge.api.schemas.base import Strict
from smsbridge.domain.surfaces import MessageType


class LinkTrackingIO(Strict):
    enabled: bool = False
    base_url: str | None = Field(None, examples=["https://go.acme.example"])
    expire_after_days: int | None = Field(
        None,
        ge=1,
        le=3650,
        description="short links answer 404 this many days after their message; null: never",
    )


class KeywordsIO(Strict):
    opt_out: list[str] | None = None
    opt_in: list[str] | None = None
    help: list[str] | None = None


class RepliesIO(Strict):
    opt_out: str | None = None
    opt_in: str | None = None
    help: str | None = None
    confirm_opt_in: str | None = Field(
        None, description="with double_opt_in: the question asked before an opt-in counts"
    )


class QuietHoursIO(Strict):
    start: str | None = Field(None, examples=["21:00"], description="HH:MM, recipient's time")
    end: str | None = Field(None, examples=["08:00"], description="HH:MM; before start: next day")
    default_timezone: str | None = Field(
        None,
        examples=["Europe/Paris"],
        description="for numbers whose prefix spans several zones (default UTC)",
    )


class FrequencyCapIO(Strict):
    max_messages: int | None = Field(None, examples=[3])
    window_hours: float | None = Field(None, examples=[24])


class SurfaceFields(Strict):
    name: str | None = Field(None, examples=["acme-marketing"])
    credential_id: str | None = None
    fallback_credential_ids: list[str] | None = None
    sender: str | None = Field(None, examples=["+15550001111"])
    message_type: MessageType | None = None
    link_tracking: LinkTrackingIO | None = None
    keywords: KeywordsIO | None = None
    replies: RepliesIO | None = None
    double_opt_in: bool | None = Field(
        None, description="an opt-in counts only after the number answers YES to a confirmation"
    )
    quiet_hours: QuietHoursIO | None = Field(
        None, description="marketing messages wait for the end of this local-time window"
    )
    frequency_cap: FrequencyCapIO | None = Field(
        None, description="at most max_messages marketing messages per number per window"
    )


class SurfaceOut(BaseModel):
    id: str
    name: str
    credential_id: str
    fallback_credential_ids: list[str]
    sender: str
    message_type: str
    link_tracking: LinkTrackingIO
    keywords: dict[str, list[str]]
    replies: dict[str, str]
    double_opt_in: bool = False
    quiet_hours: QuietHoursIO | None = None
    frequency_cap: FrequencyCapIO | None = None
    inbound_webhook_url: str
    status_webhook_url: str
    created_at: datetime
    updated_at: datetime


class SurfaceList(BaseModel):
    items: list[SurfaceOut]
    next_cursor: str | None
