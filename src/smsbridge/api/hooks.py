"""Provider webhooks (no API key; an unguessable token in the URL): inbound messages and
delivery reports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from smsbridge.api.deps import services
from smsbridge.api.problems import problem
from smsbridge.domain.webhooks import WebhookRequest
from smsbridge.services.catalog import ServiceCatalog

router = APIRouter(tags=["webhooks"])


async def _body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is over ``limit`` bytes (never read past it)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(svc: ServiceCatalog) -> Any:
    limit = svc.settings.max_webhook_bytes
    return problem(
        413,
        f"the body is over {limit:,} bytes (SMSBRIDGE_MAX_WEBHOOK_BYTES)",
        slug="too-large",
    )


def webhook_request(
    public_url: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> WebhookRequest:
    """The request as the provider sent it: the URL it called is the public one (signatures
    cover it). ``headers`` with lower-case names."""
    url = public_url.rstrip("/") + path
    if query:
        url += "?" + query
    return WebhookRequest(
        body=body, content_type=headers.get("content-type"), url=url, headers=headers
    )


def _request(request: Request, body: bytes, svc: ServiceCatalog) -> WebhookRequest:
    return webhook_request(
        svc.settings.public_url,
        request.url.path,
        request.url.query,
        {k.lower(): v for k, v in request.headers.items()},
        body,
    )


@router.post(
    "/hooks/status/{token}",
    responses={
        400: {"description": "unreadable body"},
        413: {"description": "over SMSBRIDGE_MAX_WEBHOOK_BYTES"},
    },
)
async def delivery_reports(
    token: str, request: Request, svc: ServiceCatalog = Depends(services)
) -> Any:
    """Delivery reports from the provider, read with the surface's credential mapping."""
    body = await _body(request, svc.settings.max_webhook_bytes)
    if body is None:
        return _too_large(svc)
    result = await svc.webhooks.delivery_reports(token, _request(request, body, svc))
    return JSONResponse(result)


@router.post(
    "/hooks/inbound/{token}",
    responses={
        400: {"description": "unreadable body"},
        413: {"description": "over SMSBRIDGE_MAX_WEBHOOK_BYTES"},
    },
)
async def inbound_messages(
    token: str, request: Request, svc: ServiceCatalog = Depends(services)
) -> Any:
    """Messages from phones: STOP / START / HELP act on consent and are answered; anything
    else is stored."""
    body = await _body(request, svc.settings.max_webhook_bytes)
    if body is None:
        return _too_large(svc)
    result = await svc.inbound.receive(token, _request(request, body, svc))
    return JSONResponse(result)
