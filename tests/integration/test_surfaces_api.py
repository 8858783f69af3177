"""Surfaces over the HTTP API, on SQLite and PostgreSQL: CRUD, credential references, field
errors and roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from smsbridge.container import Services
from tests.conftest import CredentialFactory

INBOUND_PREFIX = "https://sms.example.test/hooks/inbound/"
STATUS_PREFIX = "https://sms.example.test/hooks/status/"

# The defaults the API contract lists (docs/API.md, Surfaces).
DOCUMENTED_KEYWORDS = {
    "opt_out": {"STOP", "QUIT", "CANCEL", "END", "UNSUBSCRIBE"},
    "opt_in": {"START", "YES", "UNSTOP"},
    "help": {"HELP", "INFO"},
}

SurfaceFactory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_surface(client: httpx.AsyncClient, make_credential: CredentialFactory) -> SurfaceFactory:
    """Create a surface through the API (on a new credential unless ``credential_id`` is given)."""
    counter = iter(range(1, 10_000))

    async def make(**overrides: Any) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": f"surface-{next(counter)}",
            "sender": "+15550001111",
        }
        document.update(overrides)
        if "credential_id" not in document:
            document["credential_id"] = (await make_credential())["id"]
        response = await client.post("/api/v1/surfaces", json=document)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail", "errors"}
    assert problem["status"] == response.status_code
    return [e["field"] for e in problem["errors"]]


def _token(url: str, prefix: str) -> str:
    assert url.startswith(prefix), url
    token = url.removeprefix(prefix)
    assert "/" not in token and "?" not in token
    return token


async def _all_surface_ids(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/api/v1/surfaces", params={"limit": 500})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# --- create ----------------------------------------------------------------------------------


async def test_create_fills_defaults_and_webhook_urls(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    cred = await make_credential()
    response = await client.post(
        "/api/v1/surfaces",
        json={"name": "acme-alerts", "credential_id": cred["id"], "sender": "+15550001111"},
    )
    assert response.status_code == 201, response.text
    surface = response.json()
    assert surface["id"].startswith("srf_")
    assert len(surface["id"]) > len("srf_")
    assert surface["name"] == "acme-alerts"
    assert surface["credential_id"] == cred["id"]
    assert surface["fallback_credential_ids"] == []
    assert surface["sender"] == "+15550001111"
    assert surface["message_type"] == "transactional"
    assert surface["link_tracking"] == {
        "enabled": False,
        "base_url": None,
        "expire_after_days": None,
    }
    assert set(surface["keywords"]) == set(DOCUMENTED_KEYWORDS)
    for category, words in DOCUMENTED_KEYWORDS.items():
        assert words <= set(surface["keywords"][category]), category
    assert set(surface["replies"]) == {"opt_out", "opt_in", "help", "confirm_opt_in"}
    assert all(isinstance(t, str) and t.strip() for t in surface["replies"].values())
    assert surface["created_at"] == surface["updated_at"]

    inbound = _token(surface["inbound_webhook_url"], INBOUND_PREFIX)
    status = _token(surface["status_webhook_url"], STATUS_PREFIX)
    assert len(inbound) >= 24
    assert len(status) >= 24
    assert inbound != status


async def test_webhook_tokens_differ_between_surfaces(make_surface: SurfaceFactory) -> None:
    made = [await make_surface() for _ in range(3)]
    tokens = [_token(s["inbound_webhook_url"], INBOUND_PREFIX) for s in made]
    tokens += [_token(s["status_webhook_url"], STATUS_PREFIX) for s in made]
    assert len(set(tokens)) == 6


async def test_create_keeps_the_given_options(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    primary = await make_credential()
    fallbacks = [await make_credential(), await make_credential()]
    response = await client.post(
        "/api/v1/surfaces",
        json={
            "name": "acme-marketing",
            "credential_id": primary["id"],
            "fallback_credential_ids": [f["id"] for f in fallbacks],
            "sender": "ACME",
            "message_type": "marketing",
            "link_tracking": {"enabled": True, "base_url": "https://go.acme.example/"},
            "keywords": {"opt_out": [" stop ", "Quit", "STOP"], "help": ["aide"]},
            "replies": {"help": "Acme alerts. Reply STOP to cancel."},
        },
    )
    assert response.status_code == 201, response.text
    surface = response.json()
    assert surface["fallback_credential_ids"] == [f["id"] for f in fallbacks]
    assert surface["sender"] == "ACME"
    assert surface["message_type"] == "marketing"
    assert surface["link_tracking"] == {
        "enabled": True,
        "base_url": "https://go.acme.example",
        "expire_after_days": None,
    }
    # trimmed, upper-cased, without repeats; categories not given keep their defaults
    assert surface["keywords"]["opt_out"] == ["STOP", "QUIT"]
    assert surface["keywords"]["help"] == ["AIDE"]
    assert DOCUMENTED_KEYWORDS["opt_in"] <= set(surface["keywords"]["opt_in"])
    assert surface["replies"]["help"] == "Acme alerts. Reply STOP to cancel."
    assert surface["replies"]["opt_out"]


async def test_a_reply_of_1600_characters_is_accepted(make_surface: SurfaceFactory) -> None:
    surface = await make_surface(replies={"opt_out": "x" * 1600})
    assert surface["replies"]["opt_out"] == "x" * 1600


# --- read ------------------------------------------------------------------------------------


async def test_get_and_list_with_cursor_pages(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    made = [await make_surface() for _ in range(5)]
    got = await client.get(f"/api/v1/surfaces/{made[2]['id']}")
    assert got.status_code == 200
    assert got.json() == made[2]

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/api/v1/surfaces", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        pages += 1
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s["id"] for s in seen] == [m["id"] for m in made]
    assert seen == made
    assert pages == 3


async def test_bad_cursor_and_limit_are_field_errors(client: httpx.AsyncClient) -> None:
    assert _fields(await client.get("/api/v1/surfaces", params={"cursor": "%%%"})) == ["cursor"]
    assert _fields(await client.get("/api/v1/surfaces", params={"limit": 0})) == ["limit"]


# --- update ----------------------------------------------------------------------------------


async def test_patch_changes_fields_and_keeps_tokens(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    surface = await make_surface(name="before", keywords={"help": ["AIDE"]})
    response = await client.patch(
        f"/api/v1/surfaces/{surface['id']}",
        json={
            "name": "after",
            "sender": "+33612345678",
            "link_tracking": {"enabled": True, "base_url": "https://go.acme.example"},
        },
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "after"
    assert patched["sender"] == "+33612345678"
    assert patched["link_tracking"] == {
        "enabled": True,
        "base_url": "https://go.acme.example",
        "expire_after_days": None,
    }
    # what the patch did not name is kept
    assert patched["credential_id"] == surface["credential_id"]
    assert patched["keywords"] == surface["keywords"]
    assert patched["replies"] == surface["replies"]
    assert patched["message_type"] == surface["message_type"]
    assert patched["inbound_webhook_url"] == surface["inbound_webhook_url"]
    assert patched["status_webhook_url"] == surface["status_webhook_url"]
    assert patched["created_at"] == surface["created_at"]
    assert patched["updated_at"] >= surface["updated_at"]

    got = (await client.get(f"/api/v1/surfaces/{surface['id']}")).json()
    assert got == patched


async def test_patch_can_send_back_what_get_returned(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    surface = await make_surface()
    document = {
        k: v
        for k, v in surface.items()
        if k not in ("id", "created_at", "updated_at", "inbound_webhook_url", "status_webhook_url")
    }
    document["name"] = "round-tripped"
    response = await client.patch(f"/api/v1/surfaces/{surface['id']}", json=document)
    assert response.status_code == 200, response.text
    assert response.json() == {
        **surface,
        "name": "round-tripped",
        "updated_at": response.json()["updated_at"],
    }


async def test_patch_moves_the_credential_reference(
    client: httpx.AsyncClient, make_surface: SurfaceFactory, make_credential: CredentialFactory
) -> None:
    surface = await make_surface()
    old = surface["credential_id"]
    new = (await make_credential())["id"]
    response = await client.patch(f"/api/v1/surfaces/{surface['id']}", json={"credential_id": new})
    assert response.status_code == 200, response.text
    assert response.json()["credential_id"] == new
    assert (await client.delete(f"/api/v1/credentials/{old}")).status_code == 204
    assert (await client.delete(f"/api/v1/credentials/{new}")).status_code == 409


async def test_patch_of_a_nested_field_keeps_its_siblings(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    surface = await make_surface(
        link_tracking={"enabled": True, "base_url": "https://go.acme.example"},
        keywords={"help": ["AIDE"]},
    )
    response = await client.patch(
        f"/api/v1/surfaces/{surface['id']}",
        json={"link_tracking": {"base_url": "https://l.acme.example"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["link_tracking"] == {
        "enabled": True,
        "base_url": "https://l.acme.example",
        "expire_after_days": None,
    }
    response = await client.patch(
        f"/api/v1/surfaces/{surface['id']}", json={"keywords": {"opt_in": ["GO"]}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["keywords"] == {**surface["keywords"], "opt_in": ["GO"]}


async def test_bad_patch_changes_nothing(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    surface = await make_surface()
    response = await client.patch(
        f"/api/v1/surfaces/{surface['id']}",
        json={"name": "renamed", "sender": "not a sender!"},
    )
    assert response.status_code == 422
    assert _fields(response) == ["sender"]
    assert (await client.get(f"/api/v1/surfaces/{surface['id']}")).json() == surface


async def test_patch_to_a_taken_name_is_a_conflict_naming_the_field(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    await make_surface(name="taken")
    other = await make_surface(name="other")
    response = await client.patch(f"/api/v1/surfaces/{other['id']}", json={"name": "taken"})
    assert response.status_code == 409
    assert _fields(response) == ["name"]
    assert (await client.get(f"/api/v1/surfaces/{other['id']}")).json()["name"] == "other"


# --- delete and credential references ----------------------------------------------------------


async def test_delete_then_gone(client: httpx.AsyncClient, make_surface: SurfaceFactory) -> None:
    surface = await make_surface()
    deleted = await client.delete(f"/api/v1/surfaces/{surface['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(f"/api/v1/surfaces/{surface['id']}")).status_code == 404
    assert (await client.delete(f"/api/v1/surfaces/{surface['id']}")).status_code == 404
    assert surface["id"] not in await _all_surface_ids(client)


async def test_a_surface_campaigns_use_is_kept_with_a_409_naming_them(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    """Deleting a surface that a campaign (even a draft) uses answered 500 (a foreign key
    failure); now a 409 that names the campaigns."""
    surface = await make_surface(message_type="marketing")
    for name in ("Spring sale", "Été 2026"):
        made = await client.post(
            "/api/v1/campaigns",
            json={
                "name": name,
                "surface_id": surface["id"],
                "body": "Hi",
                "audience": {"all": True},
            },
        )
        assert made.status_code == 201, made.text
    refused = await client.delete(f"/api/v1/surfaces/{surface['id']}")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "2 campaign(s)" in detail and "'Spring sale'" in detail and "'Été 2026'" in detail
    assert (await client.get(f"/api/v1/surfaces/{surface['id']}")).status_code == 200


async def test_a_surface_can_go_once_its_draft_campaigns_are_deleted(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    """Drafts can be deleted (a launched campaign cannot: it is kept for its report); once
    they are gone, so can the surface."""
    surface = await make_surface(message_type="marketing")
    ids = []
    for name in ("Draft one", "Launched"):
        made = await client.post(
            "/api/v1/campaigns",
            json={
                "name": name,
                "surface_id": surface["id"],
                "body": "Hi",
                "audience": {"all": True},
            },
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    launched = await client.post(f"/api/v1/campaigns/{ids[1]}/launch")
    assert launched.status_code == 202, launched.text
    kept = await client.delete(f"/api/v1/campaigns/{ids[1]}")
    assert kept.status_code == 409 and "only a draft" in kept.json()["detail"]
    assert (await client.delete(f"/api/v1/campaigns/{ids[0]}")).status_code == 204
    assert (await client.get(f"/api/v1/campaigns/{ids[0]}")).status_code == 404
    assert (await client.delete(f"/api/v1/campaigns/{ids[0]}")).status_code == 404
    refused = await client.delete(f"/api/v1/surfaces/{surface['id']}")
    assert refused.status_code == 409 and "'Launched'" in refused.json()["detail"]
    assert "'Draft one'" not in refused.json()["detail"]

    other = await make_surface(message_type="marketing", name="only-drafts")
    draft = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "Gone soon",
            "surface_id": other["id"],
            "body": "Hi",
            "audience": {"all": True},
        },
    )
    assert (await client.delete(f"/api/v1/surfaces/{other['id']}")).status_code == 409
    assert (await client.delete(f"/api/v1/campaigns/{draft.json()['id']}")).status_code == 204
    assert (await client.delete(f"/api/v1/surfaces/{other['id']}")).status_code == 204


async def test_credentials_in_use_cannot_be_deleted_until_the_surface_goes(
    client: httpx.AsyncClient, make_credential: CredentialFactory, make_surface: SurfaceFactory
) -> None:
    primary = await make_credential()
    fallback = await make_credential()
    surface = await make_surface(
        credential_id=primary["id"], fallback_credential_ids=[fallback["id"]]
    )
    for cred in (primary, fallback):
        response = await client.delete(f"/api/v1/credentials/{cred['id']}")
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 409
        assert (await client.get(f"/api/v1/credentials/{cred['id']}")).status_code == 200

    assert (await client.delete(f"/api/v1/surfaces/{surface['id']}")).status_code == 204
    for cred in (primary, fallback):
        assert (await client.delete(f"/api/v1/credentials/{cred['id']}")).status_code == 204
        assert (await client.get(f"/api/v1/credentials/{cred['id']}")).status_code == 404


async def test_names_may_hold_spaces_like_credential_names(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    """Issue 18: a surface may be called "Acme alerts", as a credential or a campaign may; the
    name is kept trimmed, and one differing only in case or spacing clashes (409)."""
    surface = await make_surface(name="  Acme alerts (FR) ")
    assert surface["name"] == "Acme alerts (FR)"
    renamed = await client.patch(f"/api/v1/surfaces/{surface['id']}", json={"name": "1st promo"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "1st promo"
    clash = await client.post(
        "/api/v1/surfaces",
        json={"name": "1ST  Promo", "credential_id": surface["credential_id"], "sender": "Acme"},
    )
    assert clash.status_code == 409, clash.text
    assert _fields(clash) == ["name"]


# --- bad input -------------------------------------------------------------------------------

PRIMARY = "<the primary credential id>"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "two\nlines"}, "name"),
        ({"name": "   "}, "name"),
        ({"name": ""}, "name"),
        ({"name": "a" * 101}, "name"),
        ({"name": None}, "name"),
        ({"credential_id": "cred_nope"}, "credential_id"),
        ({"credential_id": None}, "credential_id"),
        ({"fallback_credential_ids": ["cred_nope"]}, "fallback_credential_ids[0]"),
        ({"fallback_credential_ids": [PRIMARY]}, "fallback_credential_ids"),
        ({"sender": "+1 555 000 1111"}, "sender"),
        ({"sender": "+1555"}, "sender"),
        ({"sender": "ACME-ALERTS-TOO-LONG"}, "sender"),
        ({"sender": "12"}, "sender"),
        ({"sender": ""}, "sender"),
        ({"sender": None}, "sender"),
        ({"message_type": "promotional"}, "message_type"),
        (
            {"link_tracking": {"enabled": True, "base_url": "ftp://go.acme.example"}},
            "link_tracking.base_url",
        ),
        (
            {"link_tracking": {"enabled": True, "base_url": "go.acme.example"}},
            "link_tracking.base_url",
        ),
        (
            {"link_tracking": {"enabled": True, "base_url": "https://go.acme.example/?x=1"}},
            "link_tracking.base_url",
        ),
        ({"keywords": {"opt_out": ["STOP", "HALT"], "opt_in": ["halt"]}}, "keywords.opt_in"),
        ({"keywords": {"help": ["HELP", " "]}}, "keywords.help"),
        ({"replies": {"opt_out": "x" * 1601}}, "replies.opt_out"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
async def test_bad_input_names_the_field(
    client: httpx.AsyncClient,
    make_credential: CredentialFactory,
    change: dict[str, Any],
    field: str,
) -> None:
    cred = await make_credential()
    document: dict[str, Any] = {
        "name": "valid",
        "credential_id": cred["id"],
        "sender": "+15550001111",
        **change,
    }
    if document.get("fallback_credential_ids") == [PRIMARY]:
        document["fallback_credential_ids"] = [cred["id"]]
    document = {k: v for k, v in document.items() if v is not None}
    response = await client.post("/api/v1/surfaces", json=document)
    assert response.status_code == 422, response.text
    assert field in _fields(response)
    assert await _all_surface_ids(client) == []


async def test_every_bad_field_is_named_at_once(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    cred = await make_credential()
    response = await client.post(
        "/api/v1/surfaces",
        json={
            "name": "two\nlines",
            "credential_id": cred["id"],
            "sender": "+1 555",
            "replies": {"help": "x" * 1601},
        },
    )
    assert response.status_code == 422
    assert set(_fields(response)) == {"name", "sender", "replies.help"}


async def test_unknown_credentials_are_all_named(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/surfaces",
        json={
            "name": "ghost",
            "credential_id": "cred_missing0",
            "fallback_credential_ids": ["cred_missing1", "cred_missing2"],
            "sender": "+15550001111",
        },
    )
    assert response.status_code == 422
    assert _fields(response) == [
        "credential_id",
        "fallback_credential_ids[0]",
        "fallback_credential_ids[1]",
    ]


async def test_a_keyword_colliding_with_a_default_category_is_refused_and_not_stored(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    cred = await make_credential()
    response = await client.post(
        "/api/v1/surfaces",
        json={
            "name": "confused",
            "credential_id": cred["id"],
            "sender": "+15550001111",
            "keywords": {"opt_in": ["stop"]},
        },
    )
    assert response.status_code == 422, response.text
    assert "keywords.opt_in" in _fields(response)
    assert await _all_surface_ids(client) == []
    assert (await client.delete(f"/api/v1/credentials/{cred['id']}")).status_code == 204


async def test_a_patch_colliding_with_a_default_category_changes_nothing(
    client: httpx.AsyncClient, make_surface: SurfaceFactory
) -> None:
    surface = await make_surface()
    response = await client.patch(
        f"/api/v1/surfaces/{surface['id']}", json={"keywords": {"opt_in": ["stop"]}}
    )
    assert response.status_code == 422, response.text
    assert "keywords.opt_in" in _fields(response)
    got = await client.get(f"/api/v1/surfaces/{surface['id']}")
    assert got.status_code == 200, got.text
    assert got.json() == surface


async def test_duplicate_name_is_a_conflict_naming_the_field(
    client: httpx.AsyncClient, make_surface: SurfaceFactory, make_credential: CredentialFactory
) -> None:
    first = await make_surface(name="taken")
    cred = await make_credential()
    response = await client.post(
        "/api/v1/surfaces",
        json={"name": "taken", "credential_id": cred["id"], "sender": "+15550001111"},
    )
    assert response.status_code == 409
    assert _fields(response) == ["name"]
    assert await _all_surface_ids(client) == [first["id"]]


async def test_not_json_body_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/surfaces", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    _fields(response)


async def test_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    for method, path, body in [
        ("GET", "/api/v1/surfaces/srf_nope", None),
        ("PATCH", "/api/v1/surfaces/srf_nope", {"name": "x"}),
        ("DELETE", "/api/v1/surfaces/srf_nope", None),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"


# --- authentication and roles ------------------------------------------------------------------


async def test_missing_or_invalid_key_is_401(client: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong-key"}):
        response = await client.get("/api/v1/surfaces", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("role", ["sender", "viewer"])
async def test_non_admin_roles_are_403_on_surfaces(
    client: httpx.AsyncClient,
    services: Services,
    make_surface: SurfaceFactory,
    make_credential: CredentialFactory,
    role: str,
) -> None:
    surface = await make_surface()
    cred = await make_credential()
    created = await services.api_keys.create(f"{role} key", role)
    headers = {"Authorization": f"Bearer {created.key}"}
    path = f"/api/v1/surfaces/{surface['id']}"
    new = {"name": "by-" + role, "credential_id": cred["id"], "sender": "+15550001111"}
    for method, url, body in [
        ("GET", "/api/v1/surfaces", None),
        ("GET", path, None),
        ("POST", "/api/v1/surfaces", new),
        ("PATCH", path, {"name": "renamed"}),
        ("DELETE", path, None),
    ]:
        response = await client.request(method, url, json=body, headers=headers)
        assert response.status_code == 403, (method, url, response.text)
        assert role in response.json()["detail"]
    assert await _all_surface_ids(client) == [surface["id"]]
    assert (await client.get(path)).json() == surface
