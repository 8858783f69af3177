"""What the conformance tests know of each provider: an account, the answer its API documents
for an accepted SMS, and how its SDK's users write phone numbers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from infobip_api_client.models import SmsMessageStatus, SmsResponse, SmsResponseDetails

from smsbridge.container import Services
from smsbridge.providers.presets import PRESETS
from tests.conformance.sdks import Account
from tests.mock_provider import MockProvider, Reply

TO = "+33612345678"
NUMBER = "+15550001111"
ALPHANUMERIC = "AcmeAlerts"
TEXT = 'Say "hi" & café — ça va? 😀'
"""Quotes, ``&``, accents, an em dash and an emoji: UCS-2."""
GSM_TEXT = 'Say "hi" & bon appétit'
"""Quotes, ``&`` and an accent that GSM-7 has."""


@dataclass(frozen=True)
class Provider:
    account: Account
    credential: dict[str, Any]
    """The fields a user gives with the preset (besides name and provider_url)."""
    answer: Reply
    """The provider's documented answer to an accepted SMS."""
    digits: bool = False
    """The provider documents numbers without "+" (Vonage, Infobip)."""
    webhook_secret: str = ""


TWILIO = Account(
    "AC0123456789abcdef0123456789abcdef",
    "SK0123456789abcdef0123456789abcdef",
    "api-key-secret-9f8e7d6c5b4a",
)
TWILIO_AUTH_TOKEN = "twilio-auth-token-0a1b2c3d4e5f6a7b"
PLIVO = Account("MAZDQ1ZDM2NDBHYTA5MG", "MAZDQ1ZDM2NDBHYTA5MG", "plivo-auth-token-8d7c6b5a4f3e")
VONAGE = Account("", "abc123key", "vonage-api-secret-3e4f5a6b")
SINCH = Account("PLAN0123456789", "", "sinch-api-token-77c1d2e3f4a5")
INFOBIP = Account("", "", "infobip-api-key-0a9b8c7d6e5f")
TELNYX = Account("", "", "KEY0123-telnyx-api-key-9f8e7d")

PROVIDERS: dict[str, Provider] = {
    "twilio": Provider(
        TWILIO,
        {
            "provider_app_id": TWILIO.app_id,
            "auth": {"username": TWILIO.user, "password": TWILIO.secret},
            "webhook_secret": TWILIO_AUTH_TOKEN,
        },
        # https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
        Reply(
            201,
            {
                "sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
                "account_sid": TWILIO.app_id,
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "api_version": "2010-04-01",
            },
        ),
        webhook_secret=TWILIO_AUTH_TOKEN,
    ),
    "plivo": Provider(
        PLIVO,
        {
            "provider_app_id": PLIVO.app_id,
            "auth": {"username": PLIVO.user, "password": PLIVO.secret},
        },
        # https://www.plivo.com/docs/messaging/api/message/send-a-message
        Reply(
            202,
            {
                "api_id": "4e1f954c-baf3-11ec-bafe-0242ac110003",
                "message": "message(s) queued",
                "message_uuid": ["4e22ad2a-baf3-11ec-bafe-0242ac110003"],
            },
        ),
    ),
    "vonage": Provider(
        VONAGE,
        {"auth": {"username": VONAGE.user, "password": VONAGE.secret}},
        # https://developer.vonage.com/en/api/sms#send-an-sms (the SDK's SmsResponse)
        Reply(
            200,
            {
                "message-count": "1",
                "messages": [
                    {
                        "to": TO.removeprefix("+"),
                        "message-id": "0A0000001234ABCD",
                        "status": "0",
                        "remaining-balance": "3.14159265",
                        "message-price": "0.03330000",
                        "network": "20801",
                    }
                ],
            },
        ),
        digits=True,
    ),
    "sinch": Provider(
        SINCH,
        {"provider_app_id": SINCH.app_id, "auth": {"token": SINCH.secret}},
        # https://developers.sinch.com/docs/sms/api-reference/sms/tag/Batches/#tag/Batches/operation/SendSMS
        Reply(
            201,
            {
                "id": "01FC66621XXXXX119Z8PMV1QPQ",
                "to": [TO],
                "from": NUMBER,
                "canceled": False,
                "body": TEXT,
                "type": "mt_text",
                "created_at": "2026-03-01T12:00:00.000Z",
                "modified_at": "2026-03-01T12:00:00.000Z",
                "delivery_report": "per_recipient",
            },
        ),
    ),
    "infobip": Provider(
        INFOBIP,
        {"auth": {"token": INFOBIP.secret}},
        # The SDK's own SmsResponse model, as /sms/3/messages answers.
        Reply(
            200,
            SmsResponse(
                bulk_id="2034072219640523073",
                messages=[
                    SmsResponseDetails(
                        message_id="2250be2d4219-3af1-78856-aabe-1362af1edfd2",
                        status=SmsMessageStatus(
                            group_id=1,
                            group_name="PENDING",
                            id=26,
                            name="PENDING_ACCEPTED",
                            description="Message sent to next instance",
                        ),
                        destination=TO.removeprefix("+"),
                    )
                ],
            ).to_dict(),
        ),
        digits=True,
    ),
    "telnyx": Provider(
        TELNYX,
        {"auth": {"token": TELNYX.secret}},
        # https://developers.telnyx.com/api/messaging/send-message
        Reply(
            200,
            {
                "data": {
                    "id": "40385f64-5717-4562-b3fc-2c963f66afa6",
                    "record_type": "message",
                    "direction": "outbound",
                    "type": "SMS",
                    "to": [{"phone_number": TO, "status": "queued"}],
                    "from": {"phone_number": NUMBER},
                    "text": TEXT,
                }
            },
        ),
    ),
}


def provider_url(preset: str, recorder: MockProvider) -> str:
    """The preset's URL on the recorder: same path (``{{appId}}`` kept), loopback origin."""
    parts = urlsplit(PRESETS[preset]["provider_url"].replace("{{appId}}", "APPID"))
    return recorder.url + parts.path.replace("APPID", "{{appId}}")


async def create_credential(
    client: httpx.AsyncClient, preset: str, recorder: MockProvider, **extra: Any
) -> dict[str, Any]:
    document = {
        "name": f"{preset}-{len(recorder.requests)}-{id(extra)}",
        "preset": preset,
        "provider_url": provider_url(preset, recorder),
        **PROVIDERS[preset].credential,
        **extra,
    }
    response = await client.post("/api/v1/credentials", json=document)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_surface(
    client: httpx.AsyncClient, credential: dict[str, Any], sender: str
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/surfaces",
        json={
            "name": f"s-{credential['id'][-8:]}-{sender.replace('+', '')}",
            "credential_id": credential["id"],
            "sender": sender,
        },
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def send_through_worker(
    client: httpx.AsyncClient, services: Services, surface: dict[str, Any], text: str
) -> dict[str, Any]:
    """Send ``text`` to :data:`TO` through the API and the worker; the message's view."""
    sent = await client.post(
        "/api/v1/messages", json={"surface_id": surface["id"], "to": TO, "body": text}
    )
    assert sent.status_code == 202, sent.text
    await services.new_worker().drain()
    view: dict[str, Any] = (await client.get(f"/api/v1/messages/{sent.json()['id']}")).json()
    assert view["status"] == "sent", view
    return view


def hook_path(url: str) -> str:
    return url[url.index("/hooks/") :]


async def in_thread(function: Any, *args: Any) -> Any:
    """Run a synchronous SDK call off the event loop the recorder answers on."""
    return await asyncio.to_thread(function, *args)
