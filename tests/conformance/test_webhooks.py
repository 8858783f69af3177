"""Provider webhooks as the providers' SDKs model them, and signatures as their libraries make
them.

Delivery reports and inbound messages are built with the SDKs' own model classes (Infobip,
Sinch, Telnyx) or, where an SDK has none, from the field names the provider documents (Twilio,
Vonage, Plivo); they must change the message's status and the sender's consent. Twilio's
``X-Twilio-Signature`` comes from ``twilio.request_validator.RequestValidator`` and Standard
Webhooks signatures from ``standardwebhooks.Webhook``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, get_args
from urllib.parse import urlencode

import httpx
import pytest
from infobip_api_client.models import (
    MessageGeneralStatus,
    SmsDeliveryResult,
    SmsInboundMessageResult,
)
from sinch.domains.sms.models.v1.response.recipient_delivery_report import (
    RecipientDeliveryReport,
)
from sinch.domains.sms.models.v1.shared.mo_text_message import MOTextMessage
from sinch.domains.sms.models.v1.types.delivery_status_type import DeliveryStatusType
from standardwebhooks import Webhook
from telnyx.types.delivery_update_webhook_event import DeliveryUpdateWebhookEvent
from telnyx.types.inbound_message_webhook_event import InboundMessageWebhookEvent
from telnyx.types.outbound_message_payload import To as TelnyxRecipient
from twilio.request_validator import RequestValidator
from twilio.rest.api.v2010.account.message import MessageInstance

from smsbridge.container import Services
from smsbridge.providers.presets import PRESETS
from tests.conformance.providers import (
    GSM_TEXT,
    NUMBER,
    PROVIDERS,
    TO,
    TWILIO,
    TWILIO_AUTH_TOKEN,
    create_credential,
    create_surface,
    hook_path,
    send_through_worker,
)
from tests.mock_provider import MockProvider

AT = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
Body = tuple[str, bytes]
"""(content type, raw body)."""


def _form(fields: dict[str, str]) -> Body:
    return "application/x-www-form-urlencoded", urlencode(fields).encode()


def _json(document: object) -> Body:
    return "application/json", json.dumps(document).encode()


def _literals(annotation: Any) -> set[str]:
    """The strings of a ``Literal`` inside an ``Optional``/``Union`` annotation."""
    found: set[str] = set()
    for arg in get_args(annotation) or (annotation,):
        if isinstance(arg, str):
            found.add(arg)
        else:
            found |= {a for a in get_args(arg) if isinstance(a, str)}
    return found


# --- every status the SDKs define is mapped ---------------------------------------------------

# Twilio's "receiving" and "received" describe inbound messages: no status callback carries them.
SDK_STATUSES: dict[str, set[str]] = {
    "twilio": {
        value
        for name, value in vars(MessageInstance.Status).items()
        if not name.startswith("_") and value not in ("receiving", "received")
    },
    "infobip": {status.value for status in MessageGeneralStatus},
    "sinch": _literals(DeliveryStatusType),
    "telnyx": _literals(TelnyxRecipient.model_fields["status"].annotation),
}


@pytest.mark.parametrize("preset", sorted(SDK_STATUSES))
def test_every_status_the_sdk_defines_is_mapped(preset: str) -> None:
    statuses = SDK_STATUSES[preset]
    assert len(statuses) >= 6  # the SDK's list was found, not an empty set
    mapped = {key.lower() for key in PRESETS[preset]["delivery_reports"]["status_map"]}
    assert {status.lower() for status in statuses} - mapped == set()


# --- delivery reports --------------------------------------------------------------------------


def _twilio_report(provider_id: str, status: str) -> Body:
    # https://www.twilio.com/docs/messaging/guides/track-outbound-message-status
    return _form(
        {
            "MessageSid": provider_id,
            "SmsSid": provider_id,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": TWILIO.app_id,
            "From": NUMBER,
            "To": TO,
            "ApiVersion": "2010-04-01",
        }
    )


REPORTS: dict[str, Callable[[str, str], Body]] = {
    "twilio": _twilio_report,
    # https://www.plivo.com/docs/messaging/concepts/callbacks (form fields)
    "plivo": lambda provider_id, status: _form(
        {
            "MessageUUID": provider_id,
            "Status": status,
            "From": NUMBER.removeprefix("+"),
            "To": TO.removeprefix("+"),
            "ErrorCode": "",
            "Units": "1",
            "MessageTime": "2026-03-01 12:00:05+00:00",
        }
    ),
    # https://developer.vonage.com/en/api/sms#delivery-receipt
    "vonage": lambda provider_id, status: _form(
        {
            "msisdn": TO.removeprefix("+"),
            "to": NUMBER.removeprefix("+"),
            "network-code": "20801",
            "messageId": provider_id,
            "price": "0.03330000",
            "status": status,
            "scts": "2603011200",
            "err-code": "0",
            "message-timestamp": "2026-03-01 12:00:05",
        }
    ),
    "sinch": lambda provider_id, status: _json(
        RecipientDeliveryReport(
            at=AT,
            batch_id=provider_id,
            code=0,
            recipient=TO.removeprefix("+"),
            status=status,
            type="recipient_delivery_report_sms",
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
    ),
    "infobip": lambda provider_id, status: _json(
        SmsDeliveryResult.model_validate(
            {
                "results": [
                    {
                        "messageId": provider_id,
                        "to": TO.removeprefix("+"),
                        "sender": NUMBER.removeprefix("+"),
                        "sentAt": AT,
                        "doneAt": AT,
                        "status": {"groupId": 3, "groupName": status, "id": 5, "name": status},
                        "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"},
                    }
                ]
            }
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
    ),
    "telnyx": lambda provider_id, status: _json(
        DeliveryUpdateWebhookEvent.model_validate(
            {
                "data": {
                    "event_type": "message.finalized",
                    "id": "4ee8c3a6-4995-4309-a3c6-38e3db9ea4be",
                    "occurred_at": AT,
                    "record_type": "event",
                    "payload": {
                        "id": provider_id,
                        "direction": "outbound",
                        "to": [{"phone_number": TO, "status": status}],
                        "errors": [],
                    },
                }
            }
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
    ),
}

DELIVERED = {"infobip": "DELIVERED", "sinch": "Delivered"}
"""Each provider's word for delivered (lower-case for the others)."""


async def _post(
    client: httpx.AsyncClient, url: str, body: Body, *, twilio_token: str | None = None
) -> httpx.Response:
    content_type, raw = body
    headers = {"Content-Type": content_type}
    if twilio_token is not None:
        params = dict(httpx.QueryParams(raw.decode())) if "form" in content_type else {}
        headers["X-Twilio-Signature"] = RequestValidator(twilio_token).compute_signature(
            url, params
        )
    return await client.post(hook_path(url), content=raw, headers=headers)


async def _sent(
    client: httpx.AsyncClient, services: Services, recorder: MockProvider, preset: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    recorder.reply(PROVIDERS[preset].answer)
    credential = await create_credential(client, preset, recorder)
    surface = await create_surface(client, credential, NUMBER)
    return surface, await send_through_worker(client, services, surface, GSM_TEXT)


@pytest.mark.parametrize("preset", sorted(REPORTS))
async def test_the_sdks_delivery_report_marks_the_message_delivered(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider, preset: str
) -> None:
    surface, message = await _sent(client, services, mock_provider, preset)
    body = REPORTS[preset](message["provider_message_id"], DELIVERED.get(preset, "delivered"))
    token = TWILIO_AUTH_TOKEN if preset == "twilio" else None
    response = await _post(client, surface["status_webhook_url"], body, twilio_token=token)
    assert response.status_code == 200, response.text
    assert response.json()["applied"] == 1, response.json()
    view = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert (view["status"], view["last_error"]) == ("delivered", None)


# A future status: the SDKs whose models take any string (Infobip and Telnyx list theirs).
@pytest.mark.parametrize("preset", ["twilio", "sinch", "vonage"])
async def test_a_status_no_mapping_names_is_kept_as_an_event(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider, preset: str
) -> None:
    surface, message = await _sent(client, services, mock_provider, preset)
    body = REPORTS[preset](message["provider_message_id"], "carrier_confirmed_v2")
    token = TWILIO_AUTH_TOKEN if preset == "twilio" else None
    response = await _post(client, surface["status_webhook_url"], body, twilio_token=token)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "applied": 0, "unknown": 0, "ignored": 1}
    view = (await client.get(f"/api/v1/messages/{message['id']}")).json()
    assert view["status"] == "sent"
    kept = [e for e in view["events"] if e["type"] == "provider_status"]
    assert [e["detail"]["status"] for e in kept] == ["carrier_confirmed_v2"]


# --- inbound messages: STOP opts the sender out -----------------------------------------------

INBOUND: dict[str, Body] = {
    # https://www.twilio.com/docs/messaging/guides/webhook-request
    "twilio": _form(
        {
            "MessageSid": "SM7e5c3a1b9d8f7e6d5c4b3a2f1e0d9c8b",
            "AccountSid": TWILIO.app_id,
            "From": TO,
            "To": NUMBER,
            "Body": "STOP",
            "NumMedia": "0",
            "NumSegments": "1",
            "ApiVersion": "2010-04-01",
        }
    ),
    # https://www.plivo.com/docs/messaging/api/message#receive-an-sms (form fields)
    "plivo": _form(
        {
            "From": TO.removeprefix("+"),
            "To": NUMBER.removeprefix("+"),
            "Text": "STOP",
            "Type": "sms",
            "MessageUUID": "0936ec98-7c4c-11e4-9bd8-22000afa12b9",
        }
    ),
    # https://developer.vonage.com/en/api/sms#inbound-sms
    "vonage": _form(
        {
            "msisdn": TO.removeprefix("+"),
            "to": NUMBER.removeprefix("+"),
            "messageId": "0A0000000123ABCD1",
            "text": "STOP",
            "type": "text",
            "keyword": "STOP",
            "message-timestamp": "2026-03-01 12:00:05",
        }
    ),
    "sinch": _json(
        MOTextMessage.model_validate(
            {
                "from": TO.removeprefix("+"),
                "to": NUMBER.removeprefix("+"),
                "body": "STOP",
                "id": "01FC66621VHDBN119Z8PMV1AHY",
                "received_at": AT,
                "type": "mo_text",
            }
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
    ),
    "infobip": _json(
        SmsInboundMessageResult.model_validate(
            {
                "results": [
                    {
                        "messageId": "817790313235066447",
                        "from": TO.removeprefix("+"),
                        "to": NUMBER.removeprefix("+"),
                        "text": "STOP",
                        "cleanText": "",
                        "keyword": "STOP",
                        "receivedAt": AT,
                        "smsCount": 1,
                    }
                ],
                "messageCount": 1,
                "pendingMessageCount": 0,
            }
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
    ),
    "telnyx": _json(
        InboundMessageWebhookEvent.model_validate(
            {
                "data": {
                    "event_type": "message.received",
                    "id": "b301ed3f-1490-491f-995f-6e64e69674d4",
                    "occurred_at": AT,
                    "record_type": "event",
                    "payload": {
                        "id": "84cca175-9755-4859-b67f-4730d7f58aa3",
                        "direction": "inbound",
                        "from": {"phone_number": TO, "carrier": "Orange"},
                        "to": [{"phone_number": NUMBER}],
                        "text": "STOP",
                        "type": "SMS",
                    },
                }
            }
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
    ),
}


@pytest.mark.parametrize("preset", sorted(INBOUND))
async def test_the_sdks_inbound_stop_opts_the_number_out(
    client: httpx.AsyncClient, mock_provider: MockProvider, preset: str
) -> None:
    mock_provider.reply(PROVIDERS[preset].answer)  # the STOP confirmation goes out through it
    credential = await create_credential(client, preset, mock_provider)
    surface = await create_surface(client, credential, NUMBER)
    token = TWILIO_AUTH_TOKEN if preset == "twilio" else None
    response = await _post(
        client, surface["inbound_webhook_url"], INBOUND[preset], twilio_token=token
    )
    assert response.status_code == 200, response.text
    assert response.json()["opt_outs"] == 1, response.json()
    consent = (await client.get(f"/api/v1/consent/{TO}")).json()
    assert [s["sender"] for s in consent["opted_out_of"]] == [NUMBER]


# --- signatures ------------------------------------------------------------------------------


async def test_twilio_with_an_api_key_verifies_webhooks_with_the_auth_token(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    """Sending as ``SK…`` with the key's secret; Twilio signs with the account's Auth Token,
    held in ``webhook_secret`` (encrypted, shown masked)."""
    surface, message = await _sent(client, services, mock_provider, "twilio")
    credential = (await client.get(f"/api/v1/credentials/{message['credential_id']}")).json()
    assert credential["webhook_secret"] == {"set": True, "last4": TWILIO_AUTH_TOKEN[-4:]}
    url = surface["status_webhook_url"]
    body = _twilio_report(message["provider_message_id"], "delivered")

    with_key_secret = await _post(client, url, body, twilio_token=TWILIO.secret)
    assert with_key_secret.status_code == 403, with_key_secret.text
    signed = await _post(client, url, body, twilio_token=TWILIO_AUTH_TOKEN)
    assert signed.status_code == 200, signed.text
    assert signed.json()["applied"] == 1


async def test_twilio_json_webhooks_are_accepted_exactly_as_request_validator_accepts_them(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    surface, message = await _sent(client, services, mock_provider, "twilio")
    raw = json.dumps(
        {"MessageSid": message["provider_message_id"], "MessageStatus": "delivered"}
    ).encode()
    url = f"{surface['status_webhook_url']}?bodySHA256={hashlib.sha256(raw).hexdigest()}"
    validator = RequestValidator(TWILIO_AUTH_TOKEN)
    signature = validator.compute_signature(url, {})
    assert validator.validate(url, raw.decode(), signature)
    tampered = raw.replace(b"delivered", b"undelivered")
    assert not validator.validate(url, tampered.decode(), signature)

    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}
    refused = await client.post(hook_path(url), content=tampered, headers=headers)
    accepted = await client.post(hook_path(url), content=raw, headers=headers)
    assert (refused.status_code, accepted.status_code) == (403, 200), accepted.text
    assert accepted.json()["applied"] == 1


async def test_standard_webhooks_signatures_from_the_reference_library(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    mock_provider.reply(PROVIDERS["telnyx"].answer)
    credential = await create_credential(
        client, "telnyx", mock_provider, webhook_signing={"secret": secret}
    )
    surface = await create_surface(client, credential, NUMBER)
    message = await send_through_worker(client, services, surface, GSM_TEXT)
    _, raw = REPORTS["telnyx"](message["provider_message_id"], "delivered")
    now = services.clock()
    signature = Webhook(secret).sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, raw.decode())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    Webhook(secret).verify(raw, headers)  # the library accepts what it made
    path = hook_path(surface["status_webhook_url"])
    tampered = await client.post(path, content=raw.replace(b"delivered", b"sent"), headers=headers)
    accepted = await client.post(path, content=raw, headers=headers)
    assert (tampered.status_code, accepted.status_code) == (403, 200), accepted.text
    assert accepted.json()["applied"] == 1
