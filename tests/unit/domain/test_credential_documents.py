"""Credential documents: secrets split out and joined back, view hints, partial updates."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from smsbridge.domain.credential_documents import (
    OPTIONAL_KEYS,
    full_document,
    join_secrets,
    last4,
    merge_patch,
    split_secrets,
    view_document,
)
from smsbridge.domain.credential_parser import parse_credential
from tests.unit.domain.conftest import CredentialFactory

SIG_HEADER = {"label": "X-Signature-Key", "type": "secret", "value": "sig-k3y-value"}
VERSION_HEADER = {"label": "X-Api-Version", "type": "static", "value": "2"}

AUTHS = [
    {"type": "bearer", "scheme": "App", "token": "s3cret-token"},
    {"type": "basic", "username": "AC0123", "password": "basic-passw0rd"},
    {"type": "api_key", "header": "X-Api-Key", "key": "api-k3y-value"},
    {"type": "none"},
]


def _full(make_credential: CredentialFactory, **overrides: Any) -> dict[str, Any]:
    return full_document(
        make_credential(
            inbound={"from_path": "$.from", "text_path": "$.text"},
            delivery_reports={"status_path": "$.status", "status_map": {"DELIVRD": "delivered"}},
            opt_out_error_codes=["21610"],
            **overrides,
        )
    )


# --- full document ----------------------------------------------------------------------------


@pytest.mark.parametrize("auth", AUTHS, ids=lambda a: a["type"])
def test_full_document_parses_back_to_the_same_credential(
    make_credential: CredentialFactory, auth: dict[str, str]
) -> None:
    credential = make_credential(
        auth=auth,
        inbound={"from_path": "$.from"},
        delivery_reports={"status_path": "$.status", "status_map": {"DELIVRD": "delivered"}},
        opt_out_error_codes=[21610],
        preset="infobip",
    )

    document = full_document(credential)

    assert document["auth"] == auth
    assert parse_credential(document, allow_private_urls=False) == credential
    assert full_document(parse_credential(document, allow_private_urls=False)) == document


def test_full_document_holds_every_field(make_credential: CredentialFactory) -> None:
    document = _full(make_credential)

    assert document == {
        "vendor": "custom",
        "name": "acme-infobip",
        "provider_app_id": "app-123",
        "provider_name": "Infobip",
        "provider_url": "https://api.example.com/sms/2/text/advanced",
        "method": "POST",
        "auth": {"type": "bearer", "scheme": "App", "token": "s3cret-token"},
        "headers": [VERSION_HEADER, SIG_HEADER],
        "content_type": "application/json",
        "payload": {
            "messages": [
                {
                    "from": "{{fromNumber}}",
                    "destinations": [{"to": "{{toNumber}}"}],
                    "text": "{{message}}",
                }
            ]
        },
        "response": {"message_id_path": "$.messages[0].messageId"},
        "rate_limit_per_second": 50.0,
        "retry_ambiguous": True,
        "timeout_seconds": 10.0,
        "opt_out_error_codes": ["21610"],
        "preset": None,
        "inbound": {"from_path": "$.from", "text_path": "$.text"},
        "delivery_reports": {"status_path": "$.status", "status_map": {"DELIVRD": "delivered"}},
    }


def test_full_document_copies_the_payload(make_credential: CredentialFactory) -> None:
    credential = make_credential()

    full_document(credential)["payload"]["messages"].clear()

    assert credential.payload["messages"]


# --- split and join ---------------------------------------------------------------------------


@pytest.mark.parametrize("auth", AUTHS, ids=lambda a: a["type"])
def test_split_then_join_gives_the_full_document_back(
    make_credential: CredentialFactory, auth: dict[str, str]
) -> None:
    credential = make_credential(auth=auth)
    document = full_document(credential)

    public, secrets = split_secrets(document)

    assert secrets == credential.secret_values()
    assert join_secrets(public, secrets) == document
    serialized = json.dumps(public)
    assert all(secret not in serialized for secret in secrets.values())


def test_split_removes_exactly_the_secret_fields(make_credential: CredentialFactory) -> None:
    public, secrets = split_secrets(_full(make_credential))

    assert secrets == {"auth.token": "s3cret-token", "headers.X-Signature-Key": "sig-k3y-value"}
    assert public["auth"] == {"type": "bearer", "scheme": "App"}
    assert public["headers"] == [VERSION_HEADER, {"label": "X-Signature-Key", "type": "secret"}]


def test_basic_auth_username_is_not_a_secret(make_credential: CredentialFactory) -> None:
    document = _full(make_credential, auth={"type": "basic", "username": "AC0", "password": "pw"})

    public, secrets = split_secrets(document)

    assert public["auth"] == {"type": "basic", "username": "AC0"}
    assert secrets["auth.password"] == "pw"


def test_split_and_join_leave_their_inputs_alone(make_credential: CredentialFactory) -> None:
    document = _full(make_credential)
    before = copy.deepcopy(document)

    public, secrets = split_secrets(document)
    public_before = copy.deepcopy(public)
    join_secrets(public, secrets)

    assert document == before
    assert public == public_before


def test_split_of_a_document_without_auth_or_headers() -> None:
    public, secrets = split_secrets({"name": "x"})

    assert (public, secrets) == ({"name": "x"}, {})


def test_join_ignores_a_secret_for_a_header_that_is_no_longer_secret() -> None:
    public = {"auth": {"type": "none"}, "headers": [VERSION_HEADER]}

    joined = join_secrets(public, {"headers.X-Api-Version": "leaked"})

    assert joined["headers"] == [VERSION_HEADER]


# --- view -------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", AUTHS, ids=lambda a: a["type"])
def test_view_shows_hints_and_no_secret(
    make_credential: CredentialFactory, auth: dict[str, str]
) -> None:
    public, secrets = split_secrets(_full(make_credential, auth=auth))

    view = view_document(public, last4(secrets))

    serialized = json.dumps(view)
    assert all(secret not in serialized for secret in secrets.values())
    assert view["headers"] == [
        VERSION_HEADER,
        {"label": "X-Signature-Key", "type": "secret", "value": {"set": True, "last4": ""}},
    ]
    for path in secrets:
        section, _, name = path.partition(".")
        if section == "auth":  # every secret here is under 16 characters: no hint
            assert view["auth"][name] == {"set": True, "last4": ""}


def test_view_of_the_api_example(make_credential: CredentialFactory) -> None:
    public, secrets = split_secrets(_full(make_credential))

    view = view_document(public, last4(secrets))

    assert view["auth"] == {
        "type": "bearer",
        "scheme": "App",
        "token": {"set": True, "last4": ""},  # "s3cret-token" is too short to hint
    }
    assert {k: v for k, v in view.items() if k not in ("auth", "headers")} == {
        k: v for k, v in public.items() if k not in ("auth", "headers")
    }


def test_view_does_not_change_the_public_document(make_credential: CredentialFactory) -> None:
    public, secrets = split_secrets(_full(make_credential))
    before = copy.deepcopy(public)

    view_document(public, last4(secrets))

    assert public == before


@pytest.mark.parametrize(
    ("secret", "hint"),
    [
        ("s3cret-token-0123456789", "6789"),
        ("abcdefghijklmnop", "mnop"),
        ("abcdefghijklmno", ""),  # 4 of 15 characters would be over a quarter of it
        ("s3cret", ""),
        ("abc", ""),
    ],
)
def test_last4(secret: str, hint: str) -> None:
    assert last4({"auth.token": secret}) == {"auth.token": hint}


# --- merge_patch ------------------------------------------------------------------------------


def test_omitted_secret_keeps_its_value(make_credential: CredentialFactory) -> None:
    current = _full(make_credential)

    merged = merge_patch(current, {"auth": {"type": "bearer", "scheme": "Key"}})

    assert merged["auth"] == {"type": "bearer", "scheme": "Key", "token": "s3cret-token"}


def test_auth_without_a_type_merges_into_the_current_auth(
    make_credential: CredentialFactory,
) -> None:
    merged = merge_patch(_full(make_credential), {"auth": {"scheme": "Key"}})

    assert merged["auth"] == {"type": "bearer", "scheme": "Key", "token": "s3cret-token"}


@pytest.mark.parametrize("given", [None, {"set": True, "last4": "oken"}, {"set": False}])
def test_secret_given_as_a_hint_or_null_counts_as_omitted(
    make_credential: CredentialFactory, given: object
) -> None:
    merged = merge_patch(_full(make_credential), {"auth": {"type": "bearer", "token": given}})

    assert merged["auth"]["token"] == "s3cret-token"


def test_new_secret_replaces_the_old_one(make_credential: CredentialFactory) -> None:
    merged = merge_patch(_full(make_credential), {"auth": {"type": "bearer", "token": "n3w-token"}})

    assert merged["auth"] == {"type": "bearer", "scheme": "App", "token": "n3w-token"}


def test_changing_the_auth_type_drops_the_old_secrets(make_credential: CredentialFactory) -> None:
    patch = {"auth": {"type": "basic", "username": "u", "password": "p"}}

    merged = merge_patch(_full(make_credential), patch)

    assert merged["auth"] == {"type": "basic", "username": "u", "password": "p"}


def test_changing_the_auth_type_ignores_hints(make_credential: CredentialFactory) -> None:
    patch = {"auth": {"type": "api_key", "header": "X-Key", "key": {"set": True, "last4": "oken"}}}

    merged = merge_patch(_full(make_credential), patch)

    assert merged["auth"] == {"type": "api_key", "header": "X-Key"}


@pytest.mark.parametrize(
    "patch_header",
    [
        {"label": "X-Signature-Key", "type": "secret"},
        {"label": "x-signature-key", "type": "secret"},
        {"label": "X-Signature-Key", "type": "secret", "value": None},
        {"label": "X-Signature-Key", "type": "secret", "value": {"set": True, "last4": "alue"}},
    ],
)
def test_secret_header_keeps_its_value_by_label(
    make_credential: CredentialFactory, patch_header: dict[str, Any]
) -> None:
    merged = merge_patch(_full(make_credential), {"headers": [patch_header]})

    assert merged["headers"] == [{**patch_header, "value": "sig-k3y-value"}]


def test_secret_header_given_a_new_value_takes_it(make_credential: CredentialFactory) -> None:
    header = {"label": "X-Signature-Key", "type": "secret", "value": "n3w-sig"}

    merged = merge_patch(_full(make_credential), {"headers": [header]})

    assert merged["headers"] == [header]


def test_new_secret_header_without_a_value_has_none(make_credential: CredentialFactory) -> None:
    header = {"label": "X-Other", "type": "secret", "value": {"set": True, "last4": "abcd"}}

    merged = merge_patch(_full(make_credential), {"headers": [header]})

    assert merged["headers"] == [{"label": "X-Other", "type": "secret"}]


def test_static_header_does_not_inherit_a_secret(make_credential: CredentialFactory) -> None:
    header = {"label": "X-Signature-Key", "type": "static", "value": "now-public"}

    merged = merge_patch(_full(make_credential), {"headers": [header, VERSION_HEADER]})

    assert merged["headers"] == [header, VERSION_HEADER]


def test_headers_list_replaces_the_old_one(make_credential: CredentialFactory) -> None:
    merged = merge_patch(_full(make_credential), {"headers": []})

    assert merged["headers"] == []


@pytest.mark.parametrize("key", sorted(OPTIONAL_KEYS))
def test_null_removes_an_optional_key(make_credential: CredentialFactory, key: str) -> None:
    extra = {
        "webhook_signing": {
            "webhook_signing": {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
        },
        "webhook_secret": {"webhook_secret": "twilio-auth-token-0123456789"},
    }
    current = _full(make_credential, **extra.get(key, {}))
    assert key in current

    merged = merge_patch(current, {key: None})

    assert key not in merged


def test_null_on_a_required_key_is_kept_for_validation_to_refuse(
    make_credential: CredentialFactory,
) -> None:
    merged = merge_patch(_full(make_credential), {"name": None})

    assert merged["name"] is None


def test_other_keys_are_replaced_whole(make_credential: CredentialFactory) -> None:
    payload = {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}

    merged = merge_patch(
        _full(make_credential), {"payload": payload, "name": "renamed", "delivery_reports": {}}
    )

    assert merged["payload"] == payload
    assert merged["name"] == "renamed"
    assert merged["delivery_reports"] == {}


def test_merge_leaves_current_and_patch_alone(make_credential: CredentialFactory) -> None:
    current = _full(make_credential)
    patch = {
        "auth": {"type": "bearer"},
        "headers": [{"label": "X-Signature-Key", "type": "secret"}],
    }
    current_before, patch_before = copy.deepcopy(current), copy.deepcopy(patch)

    merge_patch(current, patch)

    assert current == current_before
    assert patch == patch_before


def test_sending_back_the_view_changes_nothing(make_credential: CredentialFactory) -> None:
    current = _full(make_credential)
    public, secrets = split_secrets(current)

    merged = merge_patch(current, view_document(public, last4(secrets)))

    assert merged == current


def test_webhook_signing_secret_is_split_hinted_and_kept_on_echo(
    make_credential: CredentialFactory,
) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    full = _full(make_credential, webhook_signing={"secret": secret})
    public, secrets = split_secrets(full)
    assert secrets["webhook_signing.secret"] == secret
    assert public["webhook_signing"] == {"scheme": "standard_webhooks"}
    assert join_secrets(public, secrets) == full
    shown = view_document(public, last4(secrets))
    assert shown["webhook_signing"]["secret"] == {"set": True, "last4": "LaSw"}
    echoed = merge_patch(full, {"webhook_signing": shown["webhook_signing"]})
    assert echoed["webhook_signing"]["secret"] == secret
