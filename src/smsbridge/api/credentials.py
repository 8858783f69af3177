"""``/api/v1/credentials`` and ``/api/v1/provider-presets`` (role admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from smsbridge.api.deps import require, services
from smsbridge.api.problems import UNREADABLE_BODY
from smsbridge.api.schemas.credentials import (
    CredentialCreate,
    CredentialList,
    CredentialOut,
    CredentialPatch,
    PresetList,
    PreviewIn,
    PreviewOut,
    TestIn,
    TestOut,
)
from smsbridge.providers.presets import PRESETS, preset_names, preset_needs
from smsbridge.services.api_keys import Role
from smsbridge.services.catalog import ServiceCatalog
from smsbridge.services.credentials import CredentialView

router = APIRouter(
    prefix="/api/v1", tags=["credentials"], dependencies=[Depends(require(Role.ADMIN))]
)


def _out(view: CredentialView) -> dict[str, Any]:
    return {
        "id": view.id,
        **view.document,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }


@router.post(
    "/credentials", status_code=201, response_model=CredentialOut, responses=UNREADABLE_BODY
)
async def create_credential(
    body: CredentialCreate, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    return _out(await svc.credentials.create(body.model_dump(mode="json", exclude_none=True)))


@router.get("/credentials", response_model=CredentialList)
async def list_credentials(
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None),
    svc: ServiceCatalog = Depends(services),
) -> dict[str, Any]:
    page = await svc.credentials.list(limit=limit, cursor=cursor)
    return {"items": [_out(v) for v in page.items], "next_cursor": page.next_cursor}


@router.get("/credentials/{credential_id}", response_model=CredentialOut)
async def get_credential(
    credential_id: str, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    return _out(await svc.credentials.get(credential_id))


@router.patch(
    "/credentials/{credential_id}", response_model=CredentialOut, responses=UNREADABLE_BODY
)
async def patch_credential(
    credential_id: str, body: CredentialPatch, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    patch = body.model_dump(mode="json", exclude_unset=True)
    return _out(await svc.credentials.update(credential_id, patch))


@router.delete("/credentials/{credential_id}", status_code=204, response_class=Response)
async def delete_credential(
    credential_id: str, svc: ServiceCatalog = Depends(services)
) -> Response:
    await svc.credentials.delete(credential_id)
    return Response(status_code=204)


@router.post(
    "/credentials/{credential_id}/preview", response_model=PreviewOut, responses=UNREADABLE_BODY
)
async def preview_credential(
    credential_id: str, body: PreviewIn, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    request = await svc.credentials.preview(
        credential_id,
        to=body.to,
        sender=body.from_,
        message=body.message,
    )
    return vars(request)


@router.post("/credentials/{credential_id}/test", response_model=TestOut, responses=UNREADABLE_BODY)
async def run_credential_test(
    credential_id: str, body: TestIn, svc: ServiceCatalog = Depends(services)
) -> dict[str, Any]:
    result = await svc.credentials.test(
        credential_id,
        to=body.to,
        sender=body.from_,
        message=body.message,
    )
    return vars(result)


@router.get("/provider-presets", response_model=PresetList)
async def list_presets() -> dict[str, Any]:
    items = []
    for name in preset_names():
        preset = PRESETS[name]
        items.append(
            {
                "name": name,
                "provider_name": preset["provider_name"],
                "provider_url": preset["provider_url"],
                "auth_type": preset["auth"]["type"],
                "content_type": preset["content_type"],
                "needs": preset_needs(name),
                "document": preset,
            }
        )
    return {"items": items}
