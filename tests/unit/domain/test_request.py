"""build_request: the exact provider request for one credential and one message."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from urllib.parse import parse_qs

import pytest

from smsbridge import __version__
from smsbridge.domain.request import (
    MessageValues,
    ProviderRequest,
    build_request,
)
from smsbridge.domain.secret_hints import mask_secret
from tests.unit.domain.conftest import CredentialFactory

VALUES = MessageValues(
    to_number="+33612345678",
    from_number="+15550001111",
    message='Hi "there"\n😀',
    message_id="msg_01J",
    status_callback_url="https://sms.example.test/dlr/msg_01J",
)

BASE_HEADERS = (
    ("Content-Type", "application/json"),
    ("Accept", "application/json"),
    ("User-Agent", f"smsbridge/{__version__}"),
)


def _everything(request: ProviderRequest) -> str:
    """Every part of a request as one text (Basic credentials decoded), to look for secrets in."""
    parts = [request.method, request.url, request.body.decode()]
    for name, value in request.headers:
        parts.append(f"{name}: {value}")
        scheme, _, encoded = value.partition(" ")
        if scheme == "Basic":
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                parts.append(base64.b64decode(encoded, validate=True).decode())
    return "\n".join(parts)


def test_bearer_with_a_custom_scheme(make_credential: CredentialFactory) -> None:
    request = build_request(make_credential(headers=[]), VALUES)

    assert request.headers == (*BASE_HEADERS, ("Authorization", "App s3cret-token"))


def test_bearer_scheme_defaults_to_bearer(make_credential: CredentialFactory) -> None:
    credential = make_credential(auth={"type": "bearer", "token": "t0ken-value"}, headers=[])

    assert dict(build_request(credential, VALUES).headers)["Authorization"] == "Bearer t0ken-value"


@pytest.mark.parametrize(
    ("username", "password"), [("AC0123", "p4ss:word"), ("user", "pässwörd"), ("u", "x")]
)
def test_basic_is_base64_of_user_colon_password(
    make_credential: CredentialFactory, username: str, password: str
) -> None:
    credential = make_credential(
        auth={"type": "basic", "username": username, "password": password}, headers=[]
    )

    authorization = dict(build_request(credential, VALUES).headers)["Authorization"]

    scheme, _, encoded = authorization.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded, validate=True) == f"{username}:{password}".encode()


def test_basic_of_a_known_pair(make_credential: CredentialFactory) -> None:
    credential = make_credential(
        auth={"type": "basic", "username": "Aladdin", "password": "open sesame"}, headers=[]
    )

    authorization = dict(build_request(credential, VALUES).headers)["Authorization"]

    assert authorization == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_api_key_goes_in_its_header(make_credential: CredentialFactory) -> None:
    credential = make_credential(
        auth={"type": "api_key", "header": "X-Api-Key", "key": "api-k3y-value"}, headers=[]
    )

    request = build_request(credential, VALUES)

    assert request.headers == (*BASE_HEADERS, ("X-Api-Key", "api-k3y-value"))


def test_no_auth_sends_no_authorization(make_credential: CredentialFactory) -> None:
    request = build_request(make_credential(auth={"type": "none"}, headers=[]), VALUES)

    assert request.headers == BASE_HEADERS


def test_static_and_secret_headers_follow_in_order(make_credential: CredentialFactory) -> None:
    request = build_request(make_credential(), VALUES)

    assert request.headers == (
        *BASE_HEADERS,
        ("Authorization", "App s3cret-token"),
        ("X-Api-Version", "2"),
        ("X-Signature-Key", "sig-k3y-value"),
    )


def test_json_body_and_method(make_credential: CredentialFactory) -> None:
    credential = make_credential(
        method="PUT",
        payload={
            "to": "{{toNumber}}",
            "from": "{{fromNumber}}",
            "text": "{{message}}",
            "ref": "{{messageId}}",
            "callback": "{{statusCallbackUrl}}",
            "app": "{{appId}}",
        },
    )

    request = build_request(credential, VALUES)

    assert request.method == "PUT"
    assert json.loads(request.body) == {
        "to": "+33612345678",
        "from": "+15550001111",
        "text": 'Hi "there"\n😀',
        "ref": "msg_01J",
        "callback": "https://sms.example.test/dlr/msg_01J",
        "app": "app-123",
    }


def test_form_body_and_content_type(make_credential: CredentialFactory) -> None:
    credential = make_credential(
        content_type="application/x-www-form-urlencoded",
        payload={"To": "{{toNumber}}", "From": "{{fromNumber}}", "Body": "{{message}}"},
    )

    request = build_request(credential, VALUES)

    assert ("Content-Type", "application/x-www-form-urlencoded") in request.headers
    assert parse_qs(request.body.decode("ascii")) == {
        "To": ["+33612345678"],
        "From": ["+15550001111"],
        "Body": ['Hi "there"\n😀'],
    }


@pytest.mark.parametrize(
    ("app_id", "url"),
    [
        ("AC123", "https://api.example.com/Accounts/AC123/Messages.json"),
        ("AC 1/2?x#y", "https://api.example.com/Accounts/AC%201%2F2%3Fx%23y/Messages.json"),
        ("é&=", "https://api.example.com/Accounts/%C3%A9%26%3D/Messages.json"),
    ],
)
def test_app_id_in_the_url_is_percent_encoded(
    make_credential: CredentialFactory, app_id: str, url: str
) -> None:
    credential = make_credential(
        provider_app_id=app_id,
        provider_url="https://api.example.com/Accounts/{{appId}}/Messages.json",
    )

    assert build_request(credential, VALUES).url == url


def test_url_without_placeholders_is_sent_as_is(make_credential: CredentialFactory) -> None:
    request = build_request(make_credential(), VALUES)

    assert request.url == "https://api.example.com/sms/2/text/advanced"


# --- masked -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "bearer", "scheme": "App", "token": "s3cret-token"},
        {"type": "basic", "username": "AC0123", "password": "basic-passw0rd"},
        {"type": "api_key", "header": "X-Api-Key", "key": "api-k3y-value"},
        {"type": "none"},
    ],
    ids=lambda a: a["type"],
)
def test_masked_request_never_contains_a_secret(
    make_credential: CredentialFactory, auth: dict[str, str]
) -> None:
    credential = make_credential(
        auth=auth,
        headers=[
            {"label": "X-Api-Version", "type": "static", "value": "2"},
            {"label": "X-Signature-Key", "type": "secret", "value": "sig-k3y-value"},
            {"label": "X-Short", "type": "secret", "value": "abc"},
        ],
    )
    secrets = credential.secret_values().values()
    plain = build_request(credential, VALUES)

    masked = build_request(credential, VALUES, masked=True)

    assert all(secret in _everything(plain) for secret in secrets)
    assert not any(secret in _everything(masked) for secret in secrets)
    assert masked.body == plain.body
    assert masked.url == plain.url
    assert masked.method == plain.method


def test_masked_headers_hide_secrets_under_16_characters_whole(
    make_credential: CredentialFactory,
) -> None:
    masked = build_request(make_credential(), VALUES, masked=True)  # 12 and 13 characters

    assert masked.headers == (
        *BASE_HEADERS,
        ("Authorization", "App ****"),
        ("X-Api-Version", "2"),
        ("X-Signature-Key", "****"),
    )


def test_masked_basic_shows_the_username_only(make_credential: CredentialFactory) -> None:
    credential = make_credential(
        auth={"type": "basic", "username": "AC0123", "password": "basic-long-passw0rd"},
        headers=[],
    )

    masked = build_request(credential, VALUES, masked=True)

    assert dict(masked.headers)["Authorization"] == "Basic base64(AC0123:****w0rd)"


def test_masked_api_key(make_credential: CredentialFactory) -> None:
    credential = make_credential(
        auth={"type": "api_key", "header": "X-Api-Key", "key": "api-k3y-long-value"}, headers=[]
    )

    masked = build_request(credential, VALUES, masked=True)

    assert dict(masked.headers)["X-Api-Key"] == "****alue"


def test_masked_request_hides_a_four_character_secret(make_credential: CredentialFactory) -> None:
    credential = make_credential(
        auth={"type": "bearer", "token": "t0k3"},
        headers=[{"label": "X-Pin", "type": "secret", "value": "9876"}],
    )

    masked = build_request(credential, VALUES, masked=True)

    assert "t0k3" not in _everything(masked)
    assert "9876" not in _everything(masked)


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("s3cret-token-0123456789", "****6789"),
        ("s3cret-token-012", "****-012"),
        ("s3cret-token-01", "****"),
        ("s3cret-token", "****"),
        ("abcde", "****"),
        ("s3cret", "****"),
        ("abc", "****"),
        ("", "****"),
    ],
)
def test_mask_secret(secret: str, shown: str) -> None:
    assert mask_secret(secret) == shown


def test_message_values_as_placeholders() -> None:
    assert VALUES.as_placeholders("app-9") == {
        "toNumber": "+33612345678",
        "fromNumber": "+15550001111",
        "toNumberDigits": "33612345678",
        "fromNumberDigits": "15550001111",
        "message": 'Hi "there"\n😀',
        "messageId": "msg_01J",
        "statusCallbackUrl": "https://sms.example.test/dlr/msg_01J",
        "appId": "app-9",
    }
