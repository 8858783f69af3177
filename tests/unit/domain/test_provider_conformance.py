"""What the provider presets needed of the payload and credential code (issue 14): a value per
encoding, digits-only numbers, a status callback left out when there is none, a webhook secret
kept like the other secrets."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from smsbridge.domain.credential_documents import (
    full_document,
    join_secrets,
    last4,
    merge_patch,
    require_reentered_secrets,
    split_secrets,
    view_document,
)
from smsbridge.domain.payload import ContentType, PayloadTemplate
from smsbridge.domain.request import MessageValues, build_request, number_digits
from smsbridge.errors import InvalidInput
from tests.unit.domain.conftest import CredentialFactory

FORM = ContentType.FORM.value
BASE = {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}


def _values(
    message: str, callback: str = "https://sms.example.test/hooks/status/tok"
) -> MessageValues:
    return MessageValues("+33612345678", "+15550001111", message, "msg_1", callback)


@pytest.mark.parametrize(
    ("message", "encoding", "vonage_type"),
    [
        ("Hello & bon appétit", "GSM-7", "text"),
        ("Price: 5€ [promo]", "GSM-7", "text"),  # the extension table is still GSM-7
        ("Привет", "UCS-2", "unicode"),
        ("Done — thanks", "UCS-2", "unicode"),
        ("ok 😀", "UCS-2", "unicode"),
    ],
)
def test_a_custom_payload_can_depend_on_the_encoding(
    make_credential: CredentialFactory, message: str, encoding: str, vonage_type: str
) -> None:
    credential = make_credential(
        content_type=FORM,
        headers=[],
        payload={
            **BASE,
            "coding": "{{encoding}}",
            "type": "{{encoding|GSM-7:text|UCS-2:unicode}}",
            "note": "sent as {{ encoding | UCS-2: wide | GSM-7: narrow }}",
        },
    )
    form = parse_qs(build_request(credential, _values(message)).body.decode())

    assert form["coding"] == [encoding]
    assert form["type"] == [vonage_type]
    assert form["note"] == ["sent as " + ("wide" if encoding == "UCS-2" else "narrow")]


@pytest.mark.parametrize(
    "bad",
    [
        "{{encoding|GSM-7:text}}",  # UCS-2 missing
        "{{encoding|GSM-7:a|UCS-2:b|UTF-8:c}}",
        "{{encoding|GSM-7:a|GSM-7:b|UCS-2:c}}",
        "{{encoding|GSM-7 text|UCS-2:unicode}}",
        "{{toNumber|GSM-7:a|UCS-2:b}}",  # only {{encoding}} takes cases
    ],
)
def test_malformed_encoding_cases_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        PayloadTemplate.compile({**BASE, "type": bad}, ContentType.FORM)
    assert [e.field for e in caught.value.errors] == ["payload.type"]


@pytest.mark.parametrize(
    ("address", "digits"),
    [
        ("+15550001111", "15550001111"),
        ("0033612345678", "33612345678"),
        ("AcmeAlerts", "AcmeAlerts"),
        ("Acme 2", "Acme 2"),
        ("12345", "12345"),  # a short code
        ("+Acme", "+Acme"),  # not a number: left alone
    ],
)
def test_number_digits_drop_the_international_prefix_of_numbers_only(
    address: str, digits: str
) -> None:
    assert number_digits(address) == digits


def test_the_status_callback_is_left_out_when_there_is_none(
    make_credential: CredentialFactory,
) -> None:
    credential = make_credential(
        headers=[],
        payload={
            "messages": [
                {
                    **BASE,
                    "webhooks": {"delivery": {"url": "{{statusCallbackUrl}}"}, "keep": {}},
                    "ref": "cb={{statusCallbackUrl}}",
                }
            ]
        },
    )
    with_url = json.loads(build_request(credential, _values("Hi")).body)
    without = json.loads(build_request(credential, _values("Hi", callback="")).body)

    assert with_url["messages"][0]["webhooks"] == {
        "delivery": {"url": "https://sms.example.test/hooks/status/tok"},
        "keep": {},
    }
    # The member that held only the URL goes, and so does the object it leaves empty; an
    # object that was empty to begin with, and a URL inside other text, stay.
    assert without["messages"][0]["webhooks"] == {"keep": {}}
    assert without["messages"][0]["ref"] == "cb="


def test_a_form_status_callback_is_left_out_when_there_is_none(
    make_credential: CredentialFactory,
) -> None:
    credential = make_credential(
        content_type=FORM, headers=[], payload={**BASE, "StatusCallback": "{{statusCallbackUrl}}"}
    )
    body = build_request(credential, _values("Hi", callback="")).body.decode()

    assert "StatusCallback" not in parse_qs(body)


def test_webhook_secret_is_a_secret_like_the_others(make_credential: CredentialFactory) -> None:
    token = "twilio-auth-token-0a1b2c3d4e5f"
    credential = make_credential(webhook_secret=token, headers=[])
    assert credential.secret_values()["webhook_secret"] == token

    public, secrets = split_secrets(full_document(credential))
    assert "webhook_secret" not in public
    assert secrets["webhook_secret"] == token
    assert join_secrets(public, secrets)["webhook_secret"] == token
    view = view_document(public, last4(secrets))
    assert view["webhook_secret"] == {"set": True, "last4": token[-4:]}

    full = join_secrets(public, secrets)
    assert merge_patch(full, {"webhook_secret": view["webhook_secret"]})["webhook_secret"] == token
    assert "webhook_secret" not in merge_patch(full, {"webhook_secret": None})
    # Never sent to the provider: moving provider_url does not ask for it again.
    patch = {"provider_url": "https://other.example.com/send", "auth": {"token": "new-tok-1234"}}
    require_reentered_secrets(full, merge_patch(full, patch), patch)
