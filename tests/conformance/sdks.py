"""Each provider's official Python SDK sending one SMS to a loopback recorder.

Every SDK is pointed at the recorder by its own means where it has one (Infobip's ``host``,
Sinch's SMS origin, Telnyx's ``base_url``); Twilio, Plivo and Vonage build ``https://`` URLs
to their fixed hosts, so their ``requests`` sessions get :class:`LoopbackAdapter`, which sends
every request to the recorder instead, path and query unchanged. Nothing leaves 127.0.0.1.

The SDKs are synchronous: tests call them through :func:`asyncio.to_thread` while the recorder
answers on the event loop. Each sender returns the provider's message id as the SDK read it
from the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import plivo
import requests
import telnyx
from infobip_api_client import ApiClient, Configuration
from infobip_api_client.api.sms_api import SmsApi
from infobip_api_client.models import (
    SmsDestination,
    SmsMessage,
    SmsMessageContent,
    SmsMessageDeliveryReporting,
    SmsRequest,
    SmsTextContent,
    SmsWebhooks,
)
from requests.adapters import HTTPAdapter
from sinch import SinchClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient
from vonage import Auth as VonageAuth
from vonage import Vonage
from vonage_sms import SmsMessage as VonageSms


class LoopbackAdapter(HTTPAdapter):
    """Sends every request of a ``requests`` session to ``base`` (path and query kept)."""

    def __init__(self, base: str) -> None:
        super().__init__(max_retries=0)
        self._netloc = urlsplit(base).netloc
        assert self._netloc.startswith("127.0.0.1:"), base

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit(("http", self._netloc, parts.path, parts.query, ""))
        return super().send(request, **kwargs)


def pin_to_loopback(session: requests.Session, base: str) -> None:
    adapter = LoopbackAdapter(base)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


@dataclass(frozen=True)
class Sms:
    """One message as an SDK user writes it (numbers in the form the provider documents)."""

    to: str
    sender: str
    text: str
    callback: str
    client_ref: str
    unicode: bool


@dataclass(frozen=True)
class Account:
    app_id: str
    user: str
    secret: str


def twilio_send(base: str, account: Account, sms: Sms) -> str:
    http = TwilioHttpClient()
    assert http.session is not None
    pin_to_loopback(http.session, base)
    client = TwilioClient(account.user, account.secret, account.app_id, http_client=http)
    message = client.messages.create(
        to=sms.to, from_=sms.sender, body=sms.text, status_callback=sms.callback
    )
    return str(message.sid)


def plivo_send(base: str, account: Account, sms: Sms) -> str:
    client = plivo.RestClient(account.user, account.secret)
    pin_to_loopback(client.session, base)
    answer = client.messages.create(src=sms.sender, dst=sms.to, text=sms.text, url=sms.callback)
    return str(answer.message_uuid[0])


def vonage_send(base: str, account: Account, sms: Sms) -> str:
    client = Vonage(VonageAuth(api_key=account.user, api_secret=account.secret))
    pin_to_loopback(client.http_client._session, base)
    answer = client.sms.send(
        VonageSms(
            to=sms.to,
            from_=sms.sender,
            text=sms.text,
            client_ref=sms.client_ref,
            # The SDK's own rule: "unicode" for text outside the GSM-7 alphabet.
            type="unicode" if sms.unicode else "text",
            callback=sms.callback,
        )
    )
    return str(answer.messages[0].message_id)


def sinch_send(base: str, account: Account, sms: Sms) -> str:
    client = SinchClient(
        service_plan_id=account.app_id, sms_api_token=account.secret, sms_region="us"
    )
    client.configuration.sms_origin_with_service_plan_id = base
    answer = client.sms.batches.send_sms(
        to=[sms.to],
        from_=sms.sender,
        body=sms.text,
        delivery_report="per_recipient",
        event_destination_target=sms.callback,
    )
    return str(answer.id)


def infobip_send(base: str, account: Account, sms: Sms) -> str:
    api = SmsApi(ApiClient(Configuration(host=base, api_key=account.secret)))
    message = SmsMessage(
        sender=sms.sender,
        destinations=[SmsDestination(to=sms.to, message_id=sms.client_ref)],
        content=SmsMessageContent(SmsTextContent(text=sms.text)),
        webhooks=SmsWebhooks(delivery=SmsMessageDeliveryReporting(url=sms.callback)),
    )
    answer = api.send_sms_messages(sms_request=SmsRequest(messages=[message]))
    return str(answer.messages[0].message_id)


def telnyx_send(base: str, account: Account, sms: Sms) -> str:
    client = telnyx.Telnyx(api_key=account.secret, base_url=f"{base}/v2", max_retries=0)
    answer = client.messages.send(
        from_=sms.sender, to=sms.to, text=sms.text, webhook_url=sms.callback
    )
    assert answer.data is not None
    return str(answer.data.id)


SENDERS: dict[str, Callable[[str, Account, Sms], str]] = {
    "twilio": twilio_send,
    "plivo": plivo_send,
    "vonage": vonage_send,
    "sinch": sinch_send,
    "infobip": infobip_send,
    "telnyx": telnyx_send,
}
