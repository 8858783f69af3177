"""Event endpoints and their deliveries, in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from smsbridge.api.schemas.base import Strict, one_of
from smsbridge.domain.events import ALL_TYPES, MAX_OVERLAP, TEST_TYPE, DeliveryStatus, EventType

EVENT_TYPES = (*(t.value for t in EventType), ALL_TYPES)


class EventEndpointIn(Strict):
    url: str | None = Field(None, examples=["https://app.example/hooks/sms"])
    event_types: list[str] | None = Field(
        None,
        examples=[["message.delivered", "message.received"]],
        description=f'any of {", ".join(EVENT_TYPES)} ("*": all)',
    )
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None


class RotateSecretIn(Strict):
    overlap_seconds: int | None = Field(
        None,
        ge=0,
        le=int(MAX_OVERLAP.total_seconds()),
        description="how long the previous secret keeps signing beside the new one "
        "(default 86400; 0: it stops at once)",
    )


class EventEndpointOut(BaseModel):
    id: str
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    secret_hint: str = Field(description="the signing secret's prefix and last characters")
    previous_secret_expires_at: datetime | None = Field(
        description="until then the previous secret signs too (a rotation's overlap)"
    )
    failing_since: datetime | None
    disabled_reason: str | None = Field(description="why the endpoint was disabled, if it was")
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        None, description="the signing secret (whsec_…): in the creation and rotation answers only"
    )


class EventEndpointList(BaseModel):
    items: list[EventEndpointOut]
    next_cursor: str | None


class EventDeliveryOut(BaseModel):
    id: str
    event_id: str = Field(description="the webhook-id header: the same at every attempt")
    type: str = Field(examples=[EventType.MESSAGE_DELIVERED.value, TEST_TYPE])
    status: one_of(s.value for s in DeliveryStatus)  # type: ignore[valid-type]
    attempts: int
    created_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_status: int | None = Field(description="the receiver's last HTTP status")
    last_response: str | None = Field(description="the start of its last answer")
    last_error: str | None = Field(description="why the last attempt got no answer")
    payload: dict[str, Any]


class EventDeliveryList(BaseModel):
    items: list[EventDeliveryOut]
    next_cursor: str | None


class CallbackSecretOut(BaseModel):
    secret: str = Field(description="signs the events posted to messages' callback_url")
    previous_secrets: list[str] = Field(
        default_factory=list,
        description="sign them too while older keys stay in SMSBRIDGE_SECRET_KEYS (a rotation)",
    )
