"""Admin pages: the message log (search by number, status, campaign) and each message's
event timeline. Every role may read them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from smsbridge.domain.messages import MessageStatus
from smsbridge.errors import InvalidInput, NotFound
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.web.i18n import translator
from smsbridge.web.shell import Visitor, pages, visitor

router = APIRouter(prefix="/admin", include_in_schema=False)
PAGE = 50


@router.get("/messages")
async def messages_log(
    request: Request,
    to: str = "",
    status: str = "",
    campaign_id: str = "",
    cursor: str | None = None,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    filters = {"to": to.strip(), "status": status, "campaign_id": campaign_id.strip()}
    items: list[dict[str, Any]] = []
    next_cursor = None
    error = None
    try:
        page = await svc.messages.list(
            limit=PAGE,
            cursor=cursor,
            to=filters["to"] or None,
            status=filters["status"] or None,
            campaign_id=filters["campaign_id"] or None,
        )
        items = [
            {
                "id": m["id"],
                "created": m["created_at"],  # formatted for the page's language
                "to": m["to"],
                "status": m["status"],
                "body": m["body"],
                "segments": m["segments"],
                "encoding": m["encoding"],
            }
            for m in page.items
        ]
        next_cursor = page.next_cursor
    except InvalidInput as exc:
        _ = translator(request)
        error = "; ".join(
            _("%(label)s: %(message)s", label=e.field, message=_.said(e.message))
            for e in exc.errors
        )
    next_query = urlencode({**{k: v for k, v in filters.items() if v}, "cursor": next_cursor or ""})
    return pages(request).render(
        "messages.html",
        title=translator(request)("Messages"),
        items=items,
        filters=filters,
        statuses=[s.value for s in MessageStatus],
        next_cursor=next_cursor,
        next_query=next_query,
        error=error,
        **seen.context(),
    )


@router.get("/messages/{message_id}")
async def message_detail(
    message_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    try:
        message = await svc.messages.get(message_id)
    except NotFound:
        _ = translator(request)
        return pages(request).render(
            "message.html",
            status=404,
            title=_("Not found"),
            text=_("No such message."),
            back="/admin/messages",
            **seen.context(),
        )
    return pages(request).render(
        "message_detail.html", title=translator(request)("Message"), m=message, **seen.context()
    )
