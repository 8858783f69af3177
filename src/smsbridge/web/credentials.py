"""Admin pages: Channels > API credentials (list, create, edit, delete, validate).

The form itself (fields, reading a posted one, the preview) is :mod:`smsbridge.web.credential_form`;
its webhook mappings :mod:`smsbridge.web.credential_mappings`. Everything is worded in the
request's language (:mod:`smsbridge.web.i18n`), the notices carried to the list page too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from smsbridge.errors import Conflict, InvalidInput, NotFound
from smsbridge.providers.presets import PRESETS, apply_preset, preset_names
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.services.credentials import WEBHOOK_MAPPINGS
from smsbridge.web.credential_form import (
    CredentialForm,
    HeaderRow,
    SecretKeeper,
    auth_choices,
    preview_request,
    read_form,
)
from smsbridge.web.credential_mappings import (
    KINDS,
    SampleResult,
    check_sample,
    fold_errors,
)
from smsbridge.web.credential_problems import header_errors, in_admin_words, problem_list
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

EMPTY_HEADER_ROWS = 1

router = APIRouter(prefix="/admin", include_in_schema=False)


def _to_list(**notice: str) -> str:
    """The list page saying ``notice`` (``notice=`` good news, ``bad=`` a refusal)."""
    return with_notice("/admin/credentials", **notice)


def _no_credential(_: Translator) -> str:
    return _to_list(bad=_("No such credential"))


def _form_page(
    request: Request,
    seen: Visitor,
    shown: CredentialForm,
    *,
    credential_id: str | None,
    errors: dict[str, str] | None = None,
    preview: Any = None,
    sample: SampleResult | None = None,
    status: int = 200,
) -> Response:
    _ = translator(request)
    while len([h for h in shown.headers if not h.label]) < EMPTY_HEADER_ROWS:
        shown.headers.append(HeaderRow())
    errors = {
        name: in_admin_words(name, text, _) for name, text in fold_errors(errors or {}).items()
    }
    return pages(request).render(
        "credential_form.html",
        status=status,
        title=_("API credentials"),
        form=shown,
        errors=errors,
        problems=problem_list(errors, _),
        header_errors=header_errors(errors, _),
        auth_choices=auth_choices(_),
        presets=[p for p in preset_names() if p != "sandbox"] + ["sandbox"],
        credential_id=credential_id,
        action=f"/admin/credentials/{credential_id}" if credential_id else "/admin/credentials/new",
        preview=preview,
        sample=sample,
        **seen.context(),
    )


def _sample_page(
    request: Request,
    seen: Visitor,
    shown: CredentialForm,
    document: dict[str, Any],
    errors: dict[str, str],
    *,
    action: str,
    credential_id: str | None,
) -> Response:
    """The form again, with what its sample webhook gives under its (unsaved) mappings."""
    sample = None
    try:
        sample = check_sample(
            shown.mappings, KINDS[action], apply_preset(document), translator(request)
        )
    except InvalidInput as exc:
        errors = {**errors, **field_errors(exc)}
    return _form_page(
        request,
        seen,
        shown,
        credential_id=credential_id,
        errors=errors,
        sample=sample,
        status=422 if errors else 200,
    )


async def _every_problem(
    svc: ServiceCatalog,
    document: dict[str, Any],
    found: dict[str, str],
    *,
    credential_id: str | None,
) -> dict[str, str]:
    """``found`` (what the form itself could not read: a payload that is not JSON, a
    mapping…) with every other problem the credential has, so that they are all shown in one
    round: the form's own reading of a field wins over the checks made without it."""
    try:
        await svc.credentials.check(document, credential_id=credential_id)
    except InvalidInput as exc:
        return {**field_errors(exc), **found}
    except NotFound:
        pass
    return found


@router.get("/credentials")
async def credentials_list(
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    page = await svc.credentials.list(limit=500)
    items = [
        {
            "id": v.id,
            "name": v.document.get("name", ""),
            "provider_name": v.document.get("provider_name", ""),
            "provider_url": v.document.get("provider_url", ""),
            "auth_type": (v.document.get("auth") or {}).get("type", "none"),
            "updated": v.updated_at.strftime("%Y-%m-%d %H:%M UTC"),
        }
        for v in page.items
    ]
    return pages(request).render(
        "credentials.html",
        title=_("API credentials"),
        items=items,
        notice=carried_notice(request),
        **seen.context(),
    )


@router.get("/credentials/new")
async def credential_new(request: Request, seen: Visitor = Depends(visitor)) -> Response:
    admin_only(request, seen)
    return _form_page(request, seen, CredentialForm(), credential_id=None)


@router.post("/credentials/new")
async def credential_create(
    request: Request, seen: Visitor = Depends(visitor), svc: ServiceCatalog = Depends(services)
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    form = await posted_form(request, seen)
    shown, document, errors = read_form(form, SecretKeeper(svc.box), _)
    action = str(form.get("do") or "save")
    if action == "preset" and shown.preset in PRESETS:
        filled = CredentialForm.of_document({**PRESETS[shown.preset], "name": shown.name}, _)
        filled.preset = shown.preset
        filled.kept = shown.kept  # what was typed into the secret inputs stays typed
        return _form_page(request, seen, filled, credential_id=None)
    if action == "add_header":
        shown.headers.append(HeaderRow())
    if action in ("add_header", "auth_type"):  # the same form again, secrets kept sealed
        return _form_page(request, seen, shown, credential_id=None)
    if action in KINDS:
        return _sample_page(
            request, seen, shown, document, errors, action=action, credential_id=None
        )
    if errors:
        errors = await _every_problem(svc, document, errors, credential_id=None)
        return _form_page(request, seen, shown, credential_id=None, errors=errors, status=422)
    try:
        if action == "preview":
            preview = preview_request(document, svc.settings.allow_private_provider_urls)
            return _form_page(request, seen, shown, credential_id=None, preview=preview)
        created = await svc.credentials.create(document)
    except (InvalidInput, Conflict) as exc:
        return _form_page(
            request,
            seen,
            shown,
            credential_id=None,
            errors=field_errors(exc),
            status=refusal_status(exc),
        )
    name = str(created.document.get("name", ""))
    return RedirectResponse(_to_list(notice=_("Created %(name)s", name=name)), status_code=303)


@router.get("/credentials/{credential_id}")
async def credential_edit(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    try:
        view = await svc.credentials.get(credential_id)
    except NotFound:
        return pages(request).render(
            "message.html",
            status=404,
            title=_("Not found"),
            text=_("No such credential."),
            back="/admin/credentials",
            **seen.context(),
        )
    return _form_page(
        request, seen, CredentialForm.of_document(view.document, _), credential_id=credential_id
    )


@router.post("/credentials/{credential_id}")
async def credential_update(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    form = await posted_form(request, seen)
    shown, document, errors = read_form(form, SecretKeeper(svc.box), _)
    document.pop("preset", None)
    current = await found(svc.credentials.get(credential_id), _no_credential(_))
    stored = CredentialForm.of_document(current.document, _)
    shown.hints = stored.hints
    stored_headers = {h.label: h.hint for h in stored.headers}
    for row in shown.headers:
        row.hint = stored_headers.get(row.label, "") if row.type == "secret" else ""
    action = str(form.get("do") or "save")
    if action == "add_header":
        shown.headers.append(HeaderRow())
    if action in ("add_header", "auth_type"):  # the same form again, secrets kept sealed
        return _form_page(request, seen, shown, credential_id=credential_id)
    if action in KINDS:
        return _sample_page(
            request, seen, shown, document, errors, action=action, credential_id=credential_id
        )
    for key in WEBHOOK_MAPPINGS:  # a mapping emptied in the form is removed
        document.setdefault(key, None)
    if errors:
        errors = await _every_problem(svc, document, errors, credential_id=credential_id)
        return _form_page(
            request, seen, shown, credential_id=credential_id, errors=errors, status=422
        )
    try:
        if action == "preview":
            preview = preview_request(
                {**document, "preset": current.document.get("preset")},
                svc.settings.allow_private_provider_urls,
            )
            return _form_page(request, seen, shown, credential_id=credential_id, preview=preview)
        await svc.credentials.update(credential_id, document)
    except (InvalidInput, Conflict) as exc:
        return _form_page(
            request,
            seen,
            shown,
            credential_id=credential_id,
            errors=field_errors(exc),
            status=refusal_status(exc),
        )
    return RedirectResponse(_to_list(notice=_("Saved %(name)s", name=shown.name)), status_code=303)


@router.get("/credentials/{credential_id}/delete")
async def credential_delete_page(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    return await _credential_page(
        request,
        seen,
        svc,
        credential_id,
        "confirm_delete.html",
        N_("Delete credentials"),
    )


@router.post("/credentials/{credential_id}/delete")
async def credential_delete(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    await posted_form(request, seen)  # only the CSRF check: no field is read
    try:
        view = await svc.credentials.get(credential_id)
        await svc.credentials.delete(credential_id)
    except NotFound:
        return RedirectResponse(_no_credential(_), status_code=303)
    except Conflict as exc:
        return RedirectResponse(
            _to_list(bad=_("Not deleted: %(reason)s", reason=_.said(exc.message))),
            status_code=303,
        )
    name = str(view.document.get("name", ""))
    return RedirectResponse(_to_list(notice=_("Deleted %(name)s", name=name)), status_code=303)


@router.get("/credentials/{credential_id}/validate")
async def credential_validate_page(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    return await _credential_page(
        request,
        seen,
        svc,
        credential_id,
        "validate.html",
        N_("Validate connection"),
    )


@router.post("/credentials/{credential_id}/validate")
async def credential_validate(
    credential_id: str,
    request: Request,
    seen: Visitor = Depends(visitor),
    svc: ServiceCatalog = Depends(services),
) -> Response:
    admin_only(request, seen)
    _ = translator(request)
    form = await posted_form(request, seen)
    to = str(form.get("to") or "").strip()
    sender = str(form.get("sender") or "").strip() or None
    message = str(form.get("message") or "").strip() or _("smsbridge connection test")
    context: dict[str, Any] = {"to": to, "sender": sender or "", "message": message}
    view = await found(svc.credentials.get(credential_id), _no_credential(_))
    try:
        context["result"] = await svc.credentials.test(
            credential_id, to=to, sender=sender, message=message
        )
    except InvalidInput as exc:
        context["error"] = "; ".join(
            _("%(label)s: %(message)s", label=e.field, message=_.said(e.message))
            for e in exc.errors
        )
    return pages(request).render(
        "validate.html",
        title=_("Validate connection"),
        name=view.document.get("name", ""),
        credential_id=credential_id,
        **context,
        **seen.context(),
    )


async def _credential_page(
    request: Request,
    seen: Visitor,
    svc: ServiceCatalog,
    credential_id: str,
    template: str,
    title: str,
) -> Response:
    """An admin page about one credential, named (back to the list when it is gone);
    ``title`` (marked with :func:`~smsbridge.web.i18n.N_`) in the request's language."""
    admin_only(request, seen)
    _ = translator(request)
    view = await found(svc.credentials.get(credential_id), _no_credential(_))
    return pages(request).render(
        template,
        title=_(title),
        name=view.document.get("name", ""),
        credential_id=credential_id,
        **seen.context(),
    )
