"""HMAC request signing: published HMAC vectors, the string-to-sign, headers, validation."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from smsbridge.domain.credential_parser import parse_credential
from smsbridge.domain.credentials import Auth, AuthType
from smsbridge.domain.request import (
    MessageValues,
    ProviderRequest,
    build_request,
    hmac_signature,
    sign_request,
    string_to_sign,
)
from smsbridge.errors import InvalidInput

JEFE = "what do ya want for nothing?"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [  # RFC 4231 test case 2 (SHA-256) and RFC 2202 test case 2 (SHA-1)
        ("sha256", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ("sha1", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    ],
)
def test_published_vectors(algorithm: str, expected: str) -> None:
    auth = Auth(AuthType.HMAC, secret="Jefe", algorithm=algorithm, string_to_sign="{body}")
    signed = string_to_sign(auth, method="POST", path="/", timestamp="0", body=JEFE.encode())
    assert signed == JEFE.encode()
    assert hmac_signature(auth, signed) == expected
    b64 = Auth(AuthType.HMAC, secret="Jefe", algorithm=algorithm, encoding="base64")
    assert hmac_signature(b64, signed) == base64.b64encode(bytes.fromhex(expected)).decode()


def test_string_to_sign_fills_only_the_four_placeholders() -> None:
    auth = Auth(AuthType.HMAC, secret="k", string_to_sign="{method} {path}|{timestamp}|{x}{body}é")
    signed = string_to_sign(
        auth, method="POST", path="/v1/sms?x=1", timestamp="1700000000", body=b'{"a":1}'
    )
    assert signed == 'POST /v1/sms?x=1|1700000000|{x}{"a":1}é'.encode()


def test_signed_request_headers() -> None:
    auth = Auth(
        AuthType.HMAC,
        secret="s3cr3t-key",
        signature_header="X-Sig",
        timestamp_header="X-Time",
        signature_prefix="sha256=",
        timestamp_format="unix_ms",
    )
    request = ProviderRequest(
        "POST", "https://api.example.com/send?v=2", (("Content-Type", "x"),), b"hello"
    )
    now = datetime(2026, 11, 26, 12, 0, 0, 250_000, tzinfo=UTC)
    signed = dict(sign_request(request, auth, now).headers)
    timestamp = str(int(now.timestamp() * 1000))
    assert signed["X-Time"] == timestamp
    expected = hmac.new(
        b"s3cr3t-key", f"POST\n/send?v=2\n{timestamp}\nhello".encode(), hashlib.sha256
    ).hexdigest()
    assert signed["X-Sig"] == "sha256=" + expected
    assert signed["Content-Type"] == "x"


def _credential(auth: dict[str, object]) -> dict[str, object]:
    return {
        "name": "signed",
        "provider_url": "https://api.example.com/send",
        "auth": auth,
        "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
    }


def test_preview_masks_the_secret_and_the_signature() -> None:
    credential = parse_credential(
        _credential({"type": "hmac", "secret": "very-secret-1234"}), allow_private_urls=False
    )
    preview = build_request(credential, MessageValues("+33612345678", "Acme", "Hi"), masked=True)
    headers = dict(preview.headers)
    assert headers["X-Signature"] == "****(HMAC-sha256)"
    assert "very-secret" not in repr(preview)
    assert credential.secret_values() == {"auth.secret": "very-secret-1234"}


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"type": "hmac"}, "auth.secret"),
        ({"type": "hmac", "secret": "x", "algorithm": "md5"}, "auth.algorithm"),
        ({"type": "hmac", "secret": "x", "encoding": "base32"}, "auth.encoding"),
        ({"type": "hmac", "secret": "x", "string_to_sign": "static"}, "auth.string_to_sign"),
        (
            {"type": "hmac", "secret": "x", "signature_header": "Bad Header"},
            "auth.signature_header",
        ),
        (
            {"type": "hmac", "secret": "x", "signature_header": "Content-Type"},
            "auth.signature_header",
        ),
        (
            {"type": "hmac", "secret": "x", "timestamp_header": "X-Signature"},
            "auth.timestamp_header",
        ),
        ({"type": "hmac", "secret": "x", "timestamp_format": "iso"}, "auth.timestamp_format"),
        (
            {"type": "oauth2_client_credentials", "client_id": "a", "client_secret": "b"},
            "auth.token_url",
        ),
        (
            {
                "type": "oauth2_client_credentials",
                "token_url": "ftp://x",
                "client_id": "a",
                "client_secret": "b",
            },
            "auth.token_url",
        ),
        (
            {
                "type": "oauth2_client_credentials",
                "token_url": "https://t.example/token",
                "client_secret": "b",
            },
            "auth.client_id",
        ),
        (
            {
                "type": "oauth2_client_credentials",
                "token_url": "https://t.example/token",
                "client_id": "a",
            },
            "auth.client_secret",
        ),
        (
            {
                "type": "oauth2_client_credentials",
                "token_url": "https://t.example/token",
                "client_id": "a",
                "client_secret": "b",
                "client_auth": "header",
            },
            "auth.client_auth",
        ),
    ],
)
def test_bad_auth_settings_name_the_field(auth: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_credential(_credential(auth), allow_private_urls=False)
    assert field in {e.field for e in caught.value.errors}


def test_infobip_preset_with_an_oauth2_token_in_the_form_body() -> None:
    from urllib.parse import parse_qs

    from smsbridge.delivery.oauth2 import token_request
    from smsbridge.providers.presets import apply_preset

    document = apply_preset(
        {
            "name": "infobip-oauth",
            "preset": "infobip",
            "provider_url": "https://abc123.api.infobip.com/sms/2/text/advanced",
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": "https://abc123.api.infobip.com/auth/1/oauth2/token",
                "client_id": "acme-user",
                "client_secret": "acme pass&word",
                "client_auth": "body",
            },
        }
    )
    credential = parse_credential(document, allow_private_urls=False)
    request = token_request(credential.auth)
    assert request.url == "https://abc123.api.infobip.com/auth/1/oauth2/token"
    assert parse_qs(request.body.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["acme-user"],
        "client_secret": ["acme pass&word"],
    }
    assert "authorization" not in {k.lower() for k, _ in request.headers}
    assert credential.preset == "infobip"
