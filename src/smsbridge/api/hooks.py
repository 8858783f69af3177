"""Provider webhooks (no API key; an unguessable token in the URL): inbound messages and
delivery reports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from smsbridge.api.deps import services
from smsbridge.api.problems import problem
from smsbridge.domain.webhooks import MAX_WEBHOOK_BYTES
from smsbridge.wiring import Services

router = APIRouter(tags=["webhooks"])


async def _body(request: Request) -> bytes | None:
    """The body, or None when it is over the limit (never read past it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/hooks/status/{token}",
    responses={400: {"description": "unreadable body"}, 413: {"description": "over 1 MB"}},
)
async def delivery_reports(token: str, request: Request, svc: Services = Depends(services)) -> Any:
    """Delivery reports from the provider, read with the surface's credential mapping."""
    body = await _body(request)
    if body is None:
        return problem(413, "the body is over 1 MB", slug="too-large")
    result = await svc.webhooks.delivery_reports(token, body, request.headers.get("content-type"))
    return JSONResponse(result)


@router.post(
    "/hooks/inbound/{token}",
    responses={400: {"description": "unreadable body"}, 413: {"description": "over 1 MB"}},
)
async def inbound_messages(token: str, request: Request, svc: Services = Depends(services)) -> Any:
    """Messages from phones: STOP / START / HELP act on consent and are answered; anything
    else is stored."""
    body = await _body(request)
    if body is None:
        return problem(413, "the body is over 1 MB", slug="too-large")
    result = await svc.inbound.receive(token, body, request.headers.get("content-type"))
    return JSONResponse(result)
