"""Admin pages: Channels > Event endpoints — where smsbridge posts its signed events (see
docs/events.md): the list and a form to add one, each endpoint's settings, its delivery log
with a replay of failed deliveries, a test event, a new signing secret (shown once), and
delete. Admin keys only, like credentials and surfaces; in the request's language."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from smsbridge.domain.events import ALL_TYPES, DeliveryStatus, EventType
from smsbridge.errors import Conflict, InvalidInput, NotFound
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.web.i18n import N_, Translator, translator
from smsbridge.web.shell import (
    Visitor,
    admin_only,
    carried_notice,
    field_errors,
    found,
    pages,
    posted_form,
    visitor,
    with_notice,
)

router = APIRouter(prefix="/admin", include_in_schema=False)
LOG_PAGE = 50

TYPE_LABELS = {
    EventType.MESSAGE_QUEUED: N_("a message is queued"),
    EventType.MESSAGE_SENT: N_("a message is sent (the provider took it)"),
    EventType.MESSAGE_DELIVERED: N_("a message is delivered"),
    EventType.MESSAGE_UNDELIVERED: N_("a message could not be delivered"),
    EventType.MESSAGE_FAILED: N_("a message failed"),
    EventType.MESSAGE_SUPPRESSED: N_("a message is suppressed (opted out)"),
    EventType.MESSAGE_RECEIVED: N_("a message is received from a phone"),
    EventType.CONSENT_CHANGED: N_("a number opts out or back in"),
    EventType.CAMPAIGN_COMPLETED: N_("a campaign is completed"),
    EventType.LINK_CLICKED: N_("a short link is clicked"),
}
STATUS_LABELS = {
    DeliveryStatus.PENDING: N_("pending"),
    DeliveryStatus.DELIVERED: N_("delivered"),
    DeliveryStatus.FAILED: N_("failed"),
    DeliveryStatus.DEAD: N_("given up"),
}


def _listed(**notice: str) -> str:
    return with_notice("/admin/events", **notice)


def _page_of(endpoint_id: str, **notice: str) -> str:
    return with_notice(f"/admin/events/{endpoint_id}", **notice)


def _types(_: Translator) -> list[tuple[str, str]]:
    return [(t.value, _(label)) for t, label in TYPE_LABELS.items()]


def _read(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """(the endpoint document, the form as typed) from a posted endpoint form."""
    chosen = [str(v) for v in form.getlist("event_types")]
    if "all" in form.getlist("all_types"):
        chosen = [ALL_TYPES]
    typed = {
        "url": str(form.get("url") or "").strip(),
        "description": str(form.get("description") or "").strip(),
    }
    document: dict[str, Any] = {
        "url": typed["url"],
        "event_types": chosen,
        "description": typed["description"] or None,
    }
    if "enabled" in form:
        document["enabled"] = str(form.get("enabled")) == "on"
    return document, typed


def _problems(_: Translator, exc: InvalidInput) -> dict[str, str]:
    """The API's problems by the form's fields (a type's index names the list as a whole)."""
    shown: dict[str, str] = {}
    for name, message in field_errors(exc).items():
        key = "event_types" if name.startswith("event_types") else name
        shown.setdefault(key, message)
    return shown


async def _list_page(
    request: Request,
    seen: Visitor,
    svc: ServiceCatalog,
    *,
    typed: dict[str, str] | None = None,
    chosen: list[str] | None = None,
    errors: dict[str, str] | None = None,
    created: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    _ = translator(request)
    endpoints = (await svc.events.list(limit=200)).items
    return pages(request).render(
        "event_endpoints.html",
        status=status,
        title=_("Event endpoints"),
        endpoints=endpoints,
        types=_types(_),
        typed=typed or {"url": "", "description": ""},
        chosen=chosen if chosen is not None else [ALL_TYPES],
        errors=errors or {},
        created=created,
        notice=carried_notice(request),
        **seen.context(),
    )


@router.get("/events")
async def events_list(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    admin_only(request, seen)
    return await _list_page(request, seen, svc)


@router.post("/events/new")
async def event_endpoint_create(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    form = await posted_form(request, seen)
    document, typed = _read(form)
    try:
        created = await svc.events.create(document)
    except InvalidInput as exc:
        return await _list_page(
            request,
            seen,
            svc,
            typed=typed,
            chosen=document["event_types"],
            errors=_problems(_, exc),
            status=422,
        )
    # The one page that shows the secret: not a redirect, so a reload cannot show it again.
    return await _list_page(request, seen, svc, created=created)


async def _endpoint_page(
    request: Request,
    seen: Visitor,
    svc: ServiceCatalog,
    endpoint_id: str,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, Any] | None = None,
    secret: str | None = None,
    status: int = 200,
) -> Response:
    _ = translator(request)
    endpoint = await found(svc.events.get(endpoint_id), _listed(bad=_("No such event endpoint")))
    wanted = request.query_params.get("status") or None
    if wanted not in {s.value for s in DeliveryStatus}:
        wanted = None
    log = await svc.events.deliveries(endpoint_id, limit=LOG_PAGE, status=wanted)
    return pages(request).render(
        "event_endpoint.html",
        status=status,
        title=_("Event endpoint"),
        e=endpoint,
        form=typed or endpoint,
        types=_types(_),
        errors=errors or {},
        deliveries=log.items,
        more=log.next_cursor is not None,
        wanted=wanted,
        statuses=[(s.value, _(label)) for s, label in STATUS_LABELS.items()],
        status_label={s.value: _(label) for s, label in STATUS_LABELS.items()},
        secret=secret,
        notice=carried_notice(request),
        **seen.context(),
    )


@router.get("/events/{endpoint_id}")
async def event_endpoint_page(
    endpoint_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    return await _endpoint_page(request, seen, svc, endpoint_id)


@router.post("/events/{endpoint_id}")
async def event_endpoint_save(
    endpoint_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    form = await posted_form(request, seen)
    document, typed = _read(form)
    document["enabled"] = str(form.get("enabled") or "") == "on"
    try:
        await svc.events.update(endpoint_id, document)
    except InvalidInput as exc:
        shown = {**typed, "event_types": document["event_types"], "enabled": document["enabled"]}
        return await _endpoint_page(
            request, seen, svc, endpoint_id, errors=_problems(_, exc), typed=shown, status=422
        )
    except NotFound:
        return RedirectResponse(_listed(bad=_("No such event endpoint")), status_code=303)
    return RedirectResponse(_page_of(endpoint_id, notice=_("Saved")), status_code=303)


@router.post("/events/{endpoint_id}/{action}")
async def event_endpoint_action(
    endpoint_id: str,
    action: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """``test`` (a test event, posted now), ``rotate`` (a new secret, shown once; the old one
    signs too for a day), ``delete``."""
    admin_only(request, seen)
    _ = translator(request)
    await posted_form(request, seen)
    gone = RedirectResponse(_listed(bad=_("No such event endpoint")), status_code=303)
    try:
        if action == "test":
            sent = await svc.events.send_test(endpoint_id)
            if sent["status"] == DeliveryStatus.DELIVERED:
                text = _("Test event delivered (HTTP %(status)s).", status=sent["last_status"])
                return RedirectResponse(_page_of(endpoint_id, notice=text), status_code=303)
            text = _("The test event was not delivered: see the log below.")
            return RedirectResponse(_page_of(endpoint_id, bad=text), status_code=303)
        if action == "rotate":
            rotated = await svc.events.rotate_secret(endpoint_id)
            return await _endpoint_page(request, seen, svc, endpoint_id, secret=rotated["secret"])
        if action == "delete":
            await svc.events.delete(endpoint_id)
            return RedirectResponse(_listed(notice=_("Endpoint deleted")), status_code=303)
    except NotFound:
        return gone
    return gone


@router.post("/events/{endpoint_id}/deliveries/{delivery_id}/replay")
async def event_delivery_replay(
    endpoint_id: str,
    delivery_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    await posted_form(request, seen)
    try:
        await svc.events.replay(endpoint_id, delivery_id)
    except NotFound:
        return RedirectResponse(_page_of(endpoint_id, bad=_("No such delivery")), status_code=303)
    except Conflict:
        text = _("Only a failed or given-up delivery can be sent again.")
        return RedirectResponse(_page_of(endpoint_id, bad=text), status_code=303)
    text = _("The delivery is queued again, with the same webhook-id.")
    return RedirectResponse(_page_of(endpoint_id, notice=text), status_code=303)
