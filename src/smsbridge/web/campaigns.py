"""Admin pages: Campaigns — create (draft), audience, launch, live progress, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from smsbridge.errors import Conflict, InvalidInput, NotFound
from smsbridge.services.api_keys import Role
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.web.shell import Visitor, field_errors, found, pages, posted_form, require, visitor
from smsbridge.web.surfaces import surface_choices

router = APIRouter(prefix="/admin", include_in_schema=False)


WRITERS = (Role.ADMIN, Role.SENDER)


def _can_write(seen: Visitor) -> bool:
    return seen.who.role in WRITERS


def _refused(request: Request, seen: Visitor) -> None:
    require(request, seen, WRITERS, "Campaigns are run by sender or admin keys.")


def _document(fields: dict[str, str]) -> dict[str, Any]:
    audience: dict[str, Any]
    if fields["audience"] == "ids":
        audience = {
            "profile_ids": [x.strip() for x in fields["profile_ids"].splitlines() if x.strip()]
        }
    elif fields["audience"] == "filter":
        wanted: dict[str, list[str]] = {}
        for line in fields["filter"].splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip():
                wanted.setdefault(f"attributes.{name.strip()}", []).append(value.strip())
        audience = {"filter": {k: v[0] if len(v) == 1 else v for k, v in wanted.items()}}
    else:
        audience = {"all": True}
    document: dict[str, Any] = {
        "name": fields["name"],
        "surface_id": fields["surface_id"],
        "body": fields["body"],
        "audience": audience,
    }
    if fields["throttle_per_second"]:
        try:
            document["throttle_per_second"] = float(fields["throttle_per_second"])
        except ValueError:
            document["throttle_per_second"] = fields["throttle_per_second"]
    return document


@router.get("/campaigns")
async def campaigns_list(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    items = (await svc.campaigns.list(limit=200)).items
    return pages(request).render(
        "campaigns.html",
        title="Campaigns",
        items=items,
        can_write=_can_write(seen),
        **seen.context(),
    )


@router.get("/campaigns/new")
async def campaign_new(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _refused(request, seen)
    fields = {
        "name": "",
        "surface_id": "",
        "body": "",
        "audience": "all",
        "filter": "",
        "profile_ids": "",
        "throttle_per_second": "",
    }
    return pages(request).render(
        "campaign_form.html",
        title="Campaigns",
        form=fields,
        errors={},
        surfaces=await surface_choices(svc),
        **seen.context(),
    )


@router.post("/campaigns/new")
async def campaign_create(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _refused(request, seen)
    form = await posted_form(request, seen)
    keys = (
        "name",
        "surface_id",
        "body",
        "audience",
        "filter",
        "profile_ids",
        "throttle_per_second",
    )
    fields = {k: str(form.get(k) or "").strip() for k in keys}
    try:
        created = await svc.campaigns.create(_document(fields))
    except InvalidInput as exc:
        return pages(request).render(
            "campaign_form.html",
            status=422,
            title="Campaigns",
            form=fields,
            errors=field_errors(exc),
            surfaces=await surface_choices(svc),
            **seen.context(),
        )
    return RedirectResponse(f"/admin/campaigns/{created['id']}", status_code=303)


@router.get("/campaigns/{campaign_id}")
async def campaign_detail(
    campaign_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    campaign = await found(svc.campaigns.get(campaign_id), "/admin/campaigns")
    return pages(request).render(
        "campaign_detail.html",
        title="Campaign",
        c=campaign,
        can_write=_can_write(seen),
        **seen.context(),
    )


@router.get("/campaigns/{campaign_id}/progress")
async def campaign_progress(
    campaign_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    campaign = await svc.campaigns.get(campaign_id)
    html = pages(request).fragment(
        "campaign_progress.html", c=campaign, can_write=_can_write(seen), csrf=seen.session.csrf
    )
    # 286 tells htmx to stop polling: nothing moves any more once the campaign has ended.
    return HTMLResponse(html, status_code=200 if campaign["status"] == "running" else 286)


@router.post("/campaigns/{campaign_id}/{action}")
async def campaign_action(
    campaign_id: str,
    action: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _refused(request, seen)
    await posted_form(request, seen)  # only the CSRF check: no field is read
    try:
        if action == "launch":
            await svc.campaigns.launch(campaign_id)
        elif action == "cancel":
            await svc.campaigns.cancel(campaign_id)
        else:
            return RedirectResponse(f"/admin/campaigns/{campaign_id}", status_code=303)
    except (Conflict, NotFound) as exc:
        return pages(request).render(
            "message.html",
            status=409,
            title="Not possible",
            text=exc.message,
            back=f"/admin/campaigns/{campaign_id}",
            **seen.context(),
        )
    return RedirectResponse(f"/admin/campaigns/{campaign_id}", status_code=303)
