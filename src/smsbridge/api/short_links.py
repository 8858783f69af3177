"""Public endpoints (no API key): short-link redirects."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from smsbridge.api.deps import services
from smsbridge.services.catalog import ServiceCatalog

router = APIRouter(tags=["public"])

_NOT_FOUND = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Link not found</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto;
 padding: 0 1rem">
<h1>Link not found</h1><p>This link does not exist or is no longer available.</p></body></html>
"""
_TOO_MANY = _NOT_FOUND.replace("Link not found", "Too many tries").replace(
    "This link does not exist or is no longer available.",
    "Too many unknown links were asked for from your address. Try again in a minute.",
)


@router.get(
    "/l/{code}",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {"description": "to the link's original URL"},
        404: {"description": "unknown or expired link"},
        429: {"description": "too many unknown links asked for by this client; see Retry-After"},
    },
)
async def follow_link(
    code: str, request: Request, svc: ServiceCatalog = Depends(services)
) -> Response:
    """Redirect to the URL stored for ``code`` and record the click. No query parameter is
    ever honoured: the target is the stored URL only."""
    followed = await svc.links.follow(
        code,
        user_agent=request.headers.get("user-agent"),
        client_ip=request.client.host if request.client else None,
    )
    if followed.retry_after is not None:
        return HTMLResponse(
            _TOO_MANY,
            status_code=429,
            headers={"Cache-Control": "no-store", "Retry-After": str(int(followed.retry_after))},
        )
    if followed.url is None:
        return HTMLResponse(_NOT_FOUND, status_code=404, headers={"Cache-Control": "no-store"})
    return RedirectResponse(
        followed.url,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
