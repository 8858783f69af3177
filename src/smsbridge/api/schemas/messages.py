"""Messages in and out, and the preview of a personalized message."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smsbridge.api.schemas.base import JsonObject, Strict
from smsbridge.domain.messages import MessageStatus
from smsbridge.domain.segments import Encoding


class MessageIn(Strict):
    surface_id: str
    to: str | None = Field(None, examples=["+33612345678"])
    profile_id: str | None = Field(
        None, description="a profile's external_id: its phone is used, its attributes personalize"
    )
    body: str = Field(examples=["Hi Ana: https://acme.example/sale"])
    variables: JsonObject = Field(default_factory=dict)
    send_at: datetime | None = None
    callback_url: str | None = Field(
        None,
        max_length=2048,
        examples=["https://app.example/hooks/sms-status"],
        description="receives this message's status events, signed (docs/events.md)",
    )


class MessageEvent(BaseModel):
    at: datetime
    type: str
    detail: dict[str, Any] | None = None


class MessageOut(BaseModel):
    id: str
    surface_id: str
    campaign_id: str | None
    profile_id: str | None = None
    credential_id: str | None
    to: str
    from_: str = Field(alias="from")
    body: str
    segments: int
    encoding: str
    message_type: str
    status: MessageStatus
    provider_message_id: str | None
    attempts: int
    last_error: str | None
    send_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    events: list[MessageEvent] | None = None

    model_config = ConfigDict(populate_by_name=True)


class MessageList(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class MessagePreviewIn(Strict):
    surface_id: str
    body: str = Field(examples=["Hi {{ profile.firstName | default('there') }}!"])
    to: str | None = None
    profile_id: str | None = None
    variables: JsonObject = Field(default_factory=dict)


class PreviewProblem(BaseModel):
    field: str
    message: str


class MessagePreviewOut(BaseModel):
    surface_id: str
    to: str | None
    profile_id: str | None
    text: str = Field(description="the message as it would be sent")
    characters: int
    segments: int
    encoding: Encoding
    units: int = Field(description="septets (GSM-7) or UTF-16 code units (UCS-2)")
    ucs2_characters: list[str] = Field(description="the characters that force UCS-2")
    undefined: list[str] = Field(description="names the template used that have no value")
    errors: list[PreviewProblem]


class MessageBatchIn(Strict):
    messages: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="up to 1,000 messages, each as for POST /api/v1/messages; each is checked "
        "on its own and answered in its place",
    )

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Not walked here: each message is checked on its own as a MessageIn (NUL, invalid
        # Unicode) and refused in its place (messages[3].body); the others are accepted.
        return value


class BatchProblem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[PreviewProblem]


class BatchResult(BaseModel):
    index: int
    status: int = Field(description="202: accepted (see `message`); 422: refused (see `problem`)")
    message: MessageOut | None = None
    problem: BatchProblem | None = None


class MessageBatchOut(BaseModel):
    results: list[BatchResult] = Field(description="one per message sent, in request order")
