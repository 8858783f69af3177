"""The credential form's sealed secrets: what a browser sends back is only ever opened for the
field it was sealed for, by the server that sealed it, within the hour."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet
from starlette.datastructures import FormData

from smsbridge.services.secretbox import SecretBox
from smsbridge.web import credential_form
from smsbridge.web.credential_form import SecretKeeper, read_form

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def keeper() -> SecretKeeper:
    return SecretKeeper(SecretBox([Fernet.generate_key().decode()]))


def test_a_sealed_secret_opens_for_its_field_only(keeper: SecretKeeper) -> None:
    token = keeper.seal("auth_token", SECRET)
    assert SECRET not in token
    assert keeper.open("auth_token", token) == SECRET
    assert keeper.open("auth_password", token) == ""  # moved to another input: refused


@pytest.mark.parametrize("token", ["", "garbage", "gAAAAA" + "A" * 80, "é" * 10])
def test_anything_else_opens_to_nothing(keeper: SecretKeeper, token: str) -> None:
    assert keeper.open("auth_token", token) == ""


def test_another_server_key_cannot_open_it(keeper: SecretKeeper) -> None:
    other = SecretKeeper(SecretBox([Fernet.generate_key().decode()]))
    assert other.open("auth_token", keeper.seal("auth_token", SECRET)) == ""


def test_it_expires(keeper: SecretKeeper, monkeypatch: pytest.MonkeyPatch) -> None:
    token = keeper.seal("auth_token", SECRET)
    later = time.time() + credential_form.KEPT_SECONDS + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert keeper.open("auth_token", token) == ""


def test_the_form_uses_a_typed_secret_then_the_kept_one(keeper: SecretKeeper) -> None:
    base = {"name": "x", "provider_url": "https://sms.example/send", "auth_type": "bearer"}
    shown, document, _ = read_form(FormData({**base, "auth_token": SECRET}), keeper)
    assert document["auth"]["token"] == SECRET
    kept = shown.kept["auth_token"]
    again, document, _ = read_form(FormData({**base, "kept_auth_token": kept}), keeper)
    assert document["auth"]["token"] == SECRET
    assert "auth_token" in again.kept
    # typed again: the new one wins
    _, document, _ = read_form(
        FormData({**base, "auth_token": "new-token-1", "kept_auth_token": kept}), keeper
    )
    assert document["auth"]["token"] == "new-token-1"
    # nothing typed, nothing kept: left out (an edit keeps the stored one)
    _, document, _ = read_form(FormData(base), keeper)
    assert "token" not in document["auth"]
