"""Admin pages: Campaigns — the form (audience size, a sample recipient's message, scheduling),
create (draft), launch after a confirmation naming the recipients, live progress, cancel.

The form works without JavaScript: *Count the audience* posts it back and the page comes back
with the count and the sample. With htmx, the same fragments are refreshed as you type
(``POST /admin/campaigns/new/check``, answered with out-of-band swaps). The audience is
counted by :class:`smsbridge.services.audience.AudienceService`, which selects profiles as the
fan-out does, and the sample is rendered by the same preview as *Compose*
(:meth:`smsbridge.services.messages.MessageService.preview`), which personalizes and shortens
links as a send does.

Problems are reported in the form's own words, all at once, next to their field: the
attribute filter box takes ``name=value`` lines, so its errors name lines, not JSON paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from smsbridge.domain.campaigns import (
    Audience,
    parse_audience,
)
from smsbridge.errors import Conflict, InvalidInput, NotFound
from smsbridge.services.api_keys import Role
from smsbridge.services.audience import AudienceService, AudienceSize
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.services.message_rows import SendRequest
from smsbridge.web.campaign_form import (
    KEYS,
    CampaignForm,
    add_created_problems,
    audience_text,
    field_labels,
    read_form,
    time_zones,
    when_summary,
)
from smsbridge.web.i18n import translator
from smsbridge.web.shell import Visitor, found, pages, posted_form, require, visitor
from smsbridge.web.surfaces import surface_choices

router = APIRouter(prefix="/admin", include_in_schema=False)


WRITERS = (Role.ADMIN, Role.SENDER)


def _can_write(seen: Visitor) -> bool:
    return seen.who.role in WRITERS


def _refused(request: Request, seen: Visitor) -> None:
    _ = translator(request)
    require(request, seen, WRITERS, _("Campaigns are run by sender or admin keys."))


def _sender_of(surfaces: list[dict[str, str]], surface_id: str) -> str | None:
    return next((s["sender"] for s in surfaces if s["id"] == surface_id), None)


def _marked(text: str, forcing: set[str]) -> Markup:
    """The text with the characters that force UCS-2 highlighted."""
    return Markup("").join(
        Markup("<mark>{}</mark>").format(ch) if ch in forcing else escape(ch) for ch in text
    )


async def sample_preview(
    svc: ServiceCatalog, fields: Mapping[str, str], audience: Audience | None
) -> dict[str, Any] | None:
    """The message as the audience's first profile will get it (personalized, links
    shortened as the surface does), with its segments and encoding."""
    if not fields["body"].strip() or not fields["surface_id"]:
        return None
    sample = await AudienceService(svc.db).sample(audience) if audience is not None else None
    request = SendRequest(fields["surface_id"], to=None, body=fields["body"], profile_id=sample)
    try:
        preview = await svc.messages.preview(request)
    except InvalidInput as exc:
        preview = {"text": "", "characters": 0, "segments": 0, "encoding": ""}
        preview |= {"ucs2_characters": [], "undefined": [], "phone": None}
        preview["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    else:
        preview["phone"] = preview["to"]
    preview["sample"] = sample
    preview["marked"] = _marked(preview["text"], set(preview["ucs2_characters"]))
    return preview


async def _audience_size(
    svc: ServiceCatalog, audience: Audience | None, sender: str | None
) -> AudienceSize | None:
    return None if audience is None else await AudienceService(svc.db).size(audience, sender)


async def _render_form(
    request: Request,
    seen: Visitor,
    svc: ServiceCatalog,
    form: CampaignForm,
    *,
    errors: dict[str, list[str]],
    counted: bool,
    status: int = 200,
) -> Response:
    _ = form.say
    surfaces = await surface_choices(svc)
    sender = _sender_of(surfaces, form.fields["surface_id"])
    return pages(request).render(
        "campaign_form.html",
        status=status,
        title=_("Campaigns"),
        form=form.fields,
        errors=errors,
        labels=field_labels(_),
        surfaces=surfaces,
        zones=time_zones(),
        fresh=False,
        size=await _audience_size(svc, form.audience, sender) if counted else None,
        preview=await sample_preview(svc, form.fields, form.audience),
        when=when_summary(_, form.send_at, form.fields["send_at_zone"]),
        **seen.context(),
    )


@router.get("/campaigns")
async def campaigns_list(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _ = translator(request)
    items = (await svc.campaigns.list(limit=200)).items
    return pages(request).render(
        "campaigns.html",
        title=_("Campaigns"),
        items=items,
        can_write=_can_write(seen),
        **seen.context(),
    )


@router.get("/campaigns/new")
async def campaign_new(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _refused(request, seen)
    _ = translator(request)
    surfaces = await surface_choices(svc)
    fields = dict.fromkeys(KEYS, "") | {
        "surface_id": surfaces[0]["id"] if surfaces else "",
        "send_at_zone": "UTC",
    }
    return pages(request).render(
        "campaign_form.html",
        title=_("Campaigns"),
        form=fields,
        errors={},
        labels=field_labels(_),
        surfaces=surfaces,
        zones=time_zones(),
        fresh=True,
        size=None,
        preview=None,
        when=None,
        **seen.context(),
    )


@router.post("/campaigns/new/check")
async def campaign_check(
    request: Request,
    part: str = "all",
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """The form's live parts as htmx out-of-band fragments: the audience's size (``audience``),
    the sample message (``preview``), when it is sent (``when``), or all of them."""
    _refused(request, seen)
    _ = translator(request)
    form = read_form(await posted_form(request, seen), svc.clock(), _)
    surfaces = await surface_choices(svc)
    html: list[str] = []
    if part in ("all", "audience"):
        sender = _sender_of(surfaces, form.fields["surface_id"])
        html.append(
            pages(request).fragment(
                "campaign_audience.html",
                oob=True,
                form=form.fields,
                size=await _audience_size(svc, form.audience, sender),
                problems=[t for texts in form.audience_errors().values() for t in texts],
            )
        )
    if part in ("all", "audience", "preview"):
        html.append(
            pages(request).fragment(
                "campaign_preview.html",
                oob=True,
                preview=await sample_preview(svc, form.fields, form.audience),
            )
        )
    if part in ("all", "when"):
        html.append(
            pages(request).fragment(
                "campaign_when.html",
                oob=True,
                when=when_summary(_, form.send_at, form.fields["send_at_zone"]),
                problems=form.errors.get("send_at", []) + form.errors.get("send_at_zone", []),
            )
        )
    return HTMLResponse("".join(html))


@router.post("/campaigns/new")
async def campaign_create(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    _refused(request, seen)
    posted = await posted_form(request, seen)
    form = read_form(posted, svc.clock(), translator(request))
    if str(posted.get("do") or "") == "count":  # "Count the audience", without JavaScript
        errors = form.audience_errors()
        return await _render_form(request, seen, svc, form, errors=errors, counted=True)
    if not form.errors:
        try:
            created = await svc.campaigns.create(form.document())
        except InvalidInput as exc:
            add_created_problems(form, exc)
        else:
            return RedirectResponse(f"/admin/campaigns/{created['id']}", status_code=303)
    return await _render_form(
        request, seen, svc, form, errors=form.errors, counted=True, status=422
    )


async def _campaign_size(svc: ServiceCatalog, campaign: Mapping[str, Any]) -> AudienceSize:
    sender = _sender_of(await surface_choices(svc), campaign["surface_id"])
    return await AudienceService(svc.db).size(parse_audience(campaign["audience"]), sender)


@router.get("/campaigns/{campaign_id}")
async def campaign_detail(
    campaign_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _ = translator(request)
    campaign = await found(svc.campaigns.get(campaign_id), "/admin/campaigns")
    draft = campaign["status"] == "draft"
    return pages(request).render(
        "campaign_detail.html",
        title=_("Campaign %(name)s", name=campaign["name"]),
        c=campaign,
        audience=audience_text(_, campaign["audience"]),
        size=await _campaign_size(svc, campaign) if draft else None,
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


async def _confirmed_launch(
    request: Request, seen: Visitor, svc: ServiceCatalog, campaign_id: str, confirmed: str
) -> Response | None:
    """A draft launches only once the visitor confirmed the number of recipients it has now:
    the confirmation page instead (again, if the audience changed since it was shown)."""
    campaign = await svc.campaigns.get(campaign_id)
    if campaign["status"] != "draft":
        return None  # launching again changes nothing (or is refused): no question to ask
    size = await _campaign_size(svc, campaign)
    if confirmed == str(size.recipients):
        return None
    _ = translator(request)
    return pages(request).render(
        "campaign_confirm.html",
        title=_("Launch the campaign?"),
        c=campaign,
        size=size,
        audience=audience_text(_, campaign["audience"]),
        changed=bool(confirmed),
        **seen.context(),
    )


@router.post("/campaigns/{campaign_id}/{action}")
async def campaign_action(
    campaign_id: str,
    action: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    _refused(request, seen)
    _ = translator(request)
    form = await posted_form(request, seen)
    try:
        if action == "launch":
            asked = await _confirmed_launch(
                request, seen, svc, campaign_id, str(form.get("confirmed") or "")
            )
            if asked is not None:
                return asked
            await svc.campaigns.launch(campaign_id)
        elif action == "cancel":
            await svc.campaigns.cancel(campaign_id)
        else:
            return RedirectResponse(f"/admin/campaigns/{campaign_id}", status_code=303)
    except (Conflict, NotFound) as exc:
        return pages(request).render(
            "message.html",
            status=409,
            title=_("Not possible"),
            text=exc.message,
            back=f"/admin/campaigns/{campaign_id}",
            **seen.context(),
        )
    return RedirectResponse(f"/admin/campaigns/{campaign_id}", status_code=303)
