"""``/api/v1/messages`` (role sender)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from smsbridge.api.deps import require, services
from smsbridge.api.problems import UNREADABLE_BODY, field_errors
from smsbridge.api.schemas.messages import (
    MessageBatchIn,
    MessageBatchOut,
    MessageIn,
    MessageList,
    MessageOut,
    MessagePreviewIn,
    MessagePreviewOut,
)
from smsbridge.errors import FieldError, InvalidInput
from smsbridge.services.api_keys import Principal, Role
from smsbridge.services.catalog import ServiceCatalog
from smsbridge.services.message_rows import Idempotency, SendRequest

router = APIRouter(prefix="/api/v1", tags=["messages"])

MAX_IDEMPOTENCY_KEY = 255


def idempotency_of(
    key: str | None, who: Principal, operation: str, request: BaseModel | dict[str, Any]
) -> Idempotency | None:
    """The ``Idempotency-Key`` of a request, scoped to the caller's key and the operation
    (the request is serialized for its hash only when a key is given)."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInput.one("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    if isinstance(request, BaseModel):
        request = request.model_dump(mode="json")
    return Idempotency(scope=f"{who.key_id}:{operation}", key=key, request=request)


JSON = "application/json"


def answer(status: int, body: dict[str, Any]) -> Response:
    """A JSON answer. orjson writes UTC times as pydantic does ("…Z"): the response model
    documents the shape without paying a validation of each message on the way out."""
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), status, media_type=JSON)


def send_request(body: MessageIn) -> SendRequest:
    return SendRequest(
        surface_id=body.surface_id,
        to=body.to,
        body=body.body,
        send_at=body.send_at,
        profile_id=body.profile_id,
        variables=body.variables,
        callback_url=body.callback_url,
    )


@router.post(
    "/messages",
    status_code=202,
    response_model=MessageOut,
    response_model_by_alias=True,
    responses=UNREADABLE_BODY,
)
async def send_message(
    body: MessageIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """Accept one message: answered 202 once it is durable (committed with its outbox entry).
    Concurrent requests share one transaction (group commit)."""
    idempotency = idempotency_of(idempotency_key, who, "POST /api/v1/messages", body)
    status, view = await svc.messages.send(send_request(body), idempotency=idempotency)
    return answer(status, view)


@router.post(
    "/messages/batch",
    status_code=207,
    response_model=MessageBatchOut,
    responses=UNREADABLE_BODY,
)
async def send_batch(
    body: MessageBatchIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """Accept up to 1,000 messages in one request: 207 with one result per message, in
    order (202 and the message, or 422 and a problem naming the message's fields, e.g.
    ``messages[3].to``). The accepted ones are durable when this answers; one
    ``Idempotency-Key`` covers the whole batch."""
    idempotency = idempotency_of(idempotency_key, who, "POST /api/v1/messages/batch", body)
    items: list[SendRequest | InvalidInput] = []
    for item in body.messages:
        try:
            items.append(send_request(MessageIn.model_validate(item)))
        except ValidationError as exc:
            # (an error about the message as a whole is named messages[i] itself)
            errors = field_errors(exc, whole="")
            items.append(InvalidInput([FieldError(f, m) for f, m in errors]))
    status, results = await svc.messages.send_batch(items, idempotency=idempotency)
    return answer(status, results)


@router.post("/messages/preview", response_model=MessagePreviewOut, responses=UNREADABLE_BODY)
async def preview_message(
    body: MessagePreviewIn,
    _who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    """The message as it would be sent (personalized, segments, encoding). Nothing is sent."""
    return await svc.messages.preview(
        SendRequest(
            surface_id=body.surface_id,
            to=body.to,
            body=body.body,
            profile_id=body.profile_id,
            variables=body.variables,
        )
    )


@router.get("/messages", response_model=MessageList, response_model_by_alias=True)
async def list_messages(
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None),
    campaign_id: str | None = Query(None),
    status: str | None = Query(None),
    to: str | None = Query(None),
    surface_id: str | None = Query(None),
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    page = await svc.messages.list(
        limit=limit,
        cursor=cursor,
        campaign_id=campaign_id,
        status=status,
        to=to,
        surface_id=surface_id,
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/messages/{message_id}", response_model=MessageOut, response_model_by_alias=True)
async def get_message(
    message_id: str,
    _who: Principal = Depends(require(Role.VIEWER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    return await svc.messages.get(message_id)


@router.post(
    "/messages/{message_id}/cancel", response_model=MessageOut, response_model_by_alias=True
)
async def cancel_message(
    message_id: str,
    _who: Principal = Depends(require(Role.SENDER)),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    return await svc.messages.cancel(message_id)
