"""Admin pages: Channels > Surfaces (list, create, edit, delete; webhook URLs with copy
buttons), in the request's language (:mod:`smsbridge.web.i18n`).

The notices after a save or a delete travel in the redirect's query, worded in the language of
the request that saved or deleted. "Saved …" and "Deleted …" read as the credential pages' do in
English, but French names what was saved (a *canal*, not *identifiants*): those two take the
``surface`` context (``msgctxt`` in the catalog)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from smsbridge.domain.surfaces import DEFAULT_KEYWORDS, DEFAULT_REPLIES
from smsbridge.errors import Conflict, InvalidInput, NotFound
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.web.credential_mappings import webhook_gap
from smsbridge.web.i18n import N_, Translator, translator
from smsbridge.web.shell import (
    Visitor,
    admin_only,
    carried_notice,
    field_errors,
    found,
    pages,
    posted_form,
    refusal_status,
    visitor,
    with_notice,
)

router = APIRouter(prefix="/admin", include_in_schema=False)
MESSAGE_TYPES = {"transactional": N_("Transactional"), "marketing": N_("Marketing")}


def _listed(**notice: str) -> str:
    """The list's address with a notice (``notice`` or ``bad``) in its query."""
    return with_notice("/admin/surfaces", **notice)


def _type_name(_: Translator, message_type: str) -> str:
    label = MESSAGE_TYPES.get(message_type)
    return _(label) if label else message_type


def _no_surface(request: Request) -> str:
    _ = translator(request)
    return _listed(bad=_("No such surface"))


async def surface_choices(svc: ServiceCatalog) -> list[dict[str, str]]:
    """The surfaces to pick from in a form (compose, campaigns): id, name and sender."""
    return [
        {"id": v.id, "name": v.surface.name, "sender": v.surface.sender}
        for v in (await svc.surfaces.list(limit=500)).items
    ]


@dataclass
class SurfaceForm:
    name: str = ""
    credential_id: str = ""
    fallbacks: list[str] = field(default_factory=list)
    sender: str = ""
    message_type: str = "transactional"
    link_tracking: bool = False
    link_base_url: str = ""
    keywords: dict[str, str] = field(
        default_factory=lambda: {k: ", ".join(v) for k, v in DEFAULT_KEYWORDS.items()}
    )
    replies: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REPLIES))
    double_opt_in: bool = False
    quiet_start: str = ""
    quiet_end: str = ""
    quiet_zone: str = ""
    cap_max: str = ""
    cap_hours: str = ""

    @classmethod
    def of_document(cls, document: dict[str, Any]) -> SurfaceForm:
        tracking = document.get("link_tracking") or {}
        quiet = document.get("quiet_hours") or {}
        cap = document.get("frequency_cap") or {}
        return cls(
            name=document["name"],
            credential_id=document["credential_id"],
            fallbacks=list(document.get("fallback_credential_ids") or []),
            sender=document["sender"],
            message_type=document["message_type"],
            link_tracking=bool(tracking.get("enabled")),
            link_base_url=tracking.get("base_url") or "",
            keywords={k: ", ".join(v) for k, v in (document.get("keywords") or {}).items()},
            replies=dict(document.get("replies") or {}),
            double_opt_in=bool(document.get("double_opt_in")),
            quiet_start=str(quiet.get("start") or ""),
            quiet_end=str(quiet.get("end") or ""),
            quiet_zone=str(quiet.get("default_timezone") or ""),
            cap_max=str(cap.get("max_messages") or ""),
            cap_hours=f"{cap['window_hours']:g}" if cap.get("window_hours") else "",
        )


def _read(form: FormData) -> tuple[SurfaceForm, dict[str, Any]]:
    text = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    shown = SurfaceForm(
        name=text.get("name", ""),
        credential_id=text.get("credential_id", ""),
        fallbacks=[str(v) for v in form.getlist("fallback_credential_ids")],
        sender=text.get("sender", ""),
        message_type=text.get("message_type", "transactional"),
        link_tracking=text.get("link_tracking") == "on",
        link_base_url=text.get("link_base_url", ""),
        keywords={k: text.get(f"keywords_{k}", "") for k in DEFAULT_KEYWORDS},
        replies={k: text.get(f"reply_{k}", "") for k in DEFAULT_REPLIES},
        double_opt_in=text.get("double_opt_in") == "on",
        quiet_start=text.get("quiet_start", ""),
        quiet_end=text.get("quiet_end", ""),
        quiet_zone=text.get("quiet_zone", ""),
        cap_max=text.get("cap_max", ""),
        cap_hours=text.get("cap_hours", ""),
    )
    document: dict[str, Any] = {
        "name": shown.name,
        "credential_id": shown.credential_id,
        "fallback_credential_ids": [f for f in shown.fallbacks if f != shown.credential_id],
        "sender": shown.sender,
        "message_type": shown.message_type,
        "link_tracking": {
            "enabled": shown.link_tracking,
            "base_url": shown.link_base_url or None,
        },
        "keywords": {
            k: [w.strip() for w in v.split(",") if w.strip()] for k, v in shown.keywords.items()
        },
        "replies": {k: v for k, v in shown.replies.items() if v},
        "double_opt_in": shown.double_opt_in,
        "quiet_hours": None,
        "frequency_cap": None,
    }
    if shown.quiet_start or shown.quiet_end:  # both empty: no quiet hours
        document["quiet_hours"] = {
            "start": shown.quiet_start,
            "end": shown.quiet_end,
            "default_timezone": shown.quiet_zone or "UTC",
        }
    if shown.cap_max or shown.cap_hours:
        document["frequency_cap"] = {
            "max_messages": _number(shown.cap_max, int),
            "window_hours": _number(shown.cap_hours, float),
        }
    return shown, document


def _number(text: str, kind: type[int] | type[float]) -> int | float | str:
    """The number typed, or the text itself so that validation names the field."""
    try:
        return kind(text)
    except ValueError:
        return text


async def _page(
    request: Request,
    seen: Visitor,
    svc: ServiceCatalog,
    shown: SurfaceForm,
    *,
    surface_id: str | None,
    urls: list[WebhookUrl] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    notice: str | None = None,
) -> Response:
    credentials = [
        {"id": v.id, "name": v.document.get("name", v.id)}
        for v in (await svc.credentials.list(limit=500)).items
    ]
    # The primary credential is not offered as its own fallback: the one chosen, or the
    # first (what the list shows chosen) on a new form. surface_form.js follows a change.
    known = [c["id"] for c in credentials]
    primary = shown.credential_id if shown.credential_id in known else next(iter(known), "")
    _ = translator(request)
    return pages(request).render(
        "surface_form.html",
        status=status,
        title=_("Surfaces"),
        form=shown,
        credentials=credentials,
        primary=primary,
        surface_id=surface_id,
        urls=urls,
        errors=errors or {},
        action=f"/admin/surfaces/{surface_id}" if surface_id else "/admin/surfaces/new",
        notice={"kind": "ok", "text": notice} if notice else None,
        **seen.context(),
    )


@router.get("/surfaces")
async def surfaces_list(
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    names = {
        v.id: v.document.get("name", v.id) for v in (await svc.credentials.list(limit=500)).items
    }
    items = [
        {
            "id": v.id,
            "name": v.surface.name,
            "sender": v.surface.sender,
            "message_type": _type_name(_, v.surface.message_type.value),
            "credential": names.get(v.surface.credential_id, v.surface.credential_id),
            "link_tracking": v.surface.link_tracking.enabled,
        }
        for v in (await svc.surfaces.list(limit=500)).items
    ]
    return pages(request).render(
        "surfaces.html",
        title=_("Surfaces"),
        items=items,
        notice=carried_notice(request),
        **seen.context(),
    )


@router.get("/surfaces/new")
async def surface_new(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    admin_only(request, seen)
    return await _page(request, seen, svc, SurfaceForm(), surface_id=None)


@router.post("/surfaces/new")
async def surface_create(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    admin_only(request, seen)
    form = await posted_form(request, seen)
    shown, document = _read(form)
    try:
        created = await svc.surfaces.create(document)
    except (InvalidInput, Conflict) as exc:
        return await _page(
            request,
            seen,
            svc,
            shown,
            surface_id=None,
            errors=field_errors(exc),
            status=refusal_status(exc),
        )
    return RedirectResponse(f"/admin/surfaces/{created.id}?created=1", status_code=303)


@dataclass(frozen=True)
class WebhookUrl:
    """A webhook URL to give the provider; or, when the surface's credential cannot read
    what would be posted there, what it lacks (the URL is not offered then)."""

    label: str
    url: str
    key: str
    gap: str | None = None
    credential_id: str = ""
    credential_name: str = ""
    copy_label: str = ""


async def _urls(svc: ServiceCatalog, view: Any, _: Translator) -> list[WebhookUrl]:
    """The surface's webhook URLs, checked against its primary credential's mappings (the
    credential that reads every webhook of the surface), worded by ``_``."""
    credential_id = view.surface.credential_id
    try:
        document = (await svc.credentials.get(credential_id)).document
    except NotFound:
        document = {}
    name = str(document.get("name") or credential_id)
    return [
        WebhookUrl(_(label), url, key, webhook_gap(document, kind, _), credential_id, name, _(copy))
        for label, copy, url, key, kind in (
            (
                N_("Inbound webhook URL"),
                N_("Copy the inbound webhook URL"),
                view.inbound_webhook_url,
                "inbound",
                "inbound",
            ),
            (
                N_("Status webhook URL"),
                N_("Copy the status webhook URL"),
                view.status_webhook_url,
                "status",
                "delivery_reports",
            ),
        )
    ]


@router.get("/surfaces/{surface_id}")
async def surface_edit(
    surface_id: str,
    request: Request,
    created: bool = False,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    view = await found(svc.surfaces.get(surface_id), "/admin/surfaces")
    shown = SurfaceForm.of_document(view.surface.document())
    return await _page(
        request,
        seen,
        svc,
        shown,
        surface_id=surface_id,
        urls=await _urls(svc, view, _),
        notice=_(
            "Created %(name)s. Give your provider the webhook URLs below.",
            name=view.surface.name,
        )
        if created
        else None,
    )


@router.post("/surfaces/{surface_id}")
async def surface_update(
    surface_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    form = await posted_form(request, seen)
    shown, document = _read(form)
    try:
        view = await svc.surfaces.update(surface_id, document)
    except NotFound:
        return RedirectResponse("/admin/surfaces", status_code=303)
    except (InvalidInput, Conflict) as exc:
        current = await svc.surfaces.get(surface_id)
        return await _page(
            request,
            seen,
            svc,
            shown,
            surface_id=surface_id,
            urls=await _urls(svc, current, _),
            errors=field_errors(exc),
            status=refusal_status(exc),
        )
    saved = _.catalog.pgettext("surface", "Saved %(name)s")
    return RedirectResponse(_listed(notice=saved % {"name": view.surface.name}), status_code=303)


@router.get("/surfaces/{surface_id}/delete")
async def surface_delete_page(
    surface_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    """Asks before deleting (the refusals, if any, come after: they are the API's)."""
    admin_only(request, seen)
    _ = translator(request)
    view = await found(svc.surfaces.get(surface_id), _no_surface(request))
    return pages(request).render(
        "surface_delete.html",
        title=_("Delete a surface"),
        name=view.surface.name,
        sender=view.surface.sender,
        surface_id=surface_id,
        **seen.context(),
    )


@router.post("/surfaces/{surface_id}/delete")
async def surface_delete(
    surface_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    await posted_form(request, seen)  # only the CSRF check: no field is read
    _ = translator(request)
    try:
        view = await svc.surfaces.get(surface_id)
        await svc.surfaces.delete(surface_id)
    except NotFound:
        return RedirectResponse(_no_surface(request), status_code=303)
    except Conflict as exc:  # messages still to send, or campaigns (named) that need it
        refused = _("Not deleted: %(reason)s", reason=_.said(exc.message))
        return RedirectResponse(_listed(bad=refused), status_code=303)
    deleted = _.catalog.pgettext("surface", "Deleted %(name)s")
    return RedirectResponse(_listed(notice=deleted % {"name": view.surface.name}), status_code=303)
