"""Each preset's request against the request the provider's official SDK makes for the same SMS.

Both go to the same loopback recorder: the preset's through the API and the delivery worker
(the exact bytes smsbridge sends, real auth header included), the SDK's through the SDK. They
must agree on method, path, query, ``Authorization``, media type and every body field, and the
provider id smsbridge stores must be the one the SDK reads from the same documented answer.
Differences kept on purpose are listed in :data:`KEPT_DIFFERENCES`, each explained in
``docs/providers/<name>.md``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest

from smsbridge.container import Services
from smsbridge.domain.segments import Encoding, count_segments
from tests.conformance.providers import (
    ALPHANUMERIC,
    GSM_TEXT,
    NUMBER,
    PROVIDERS,
    TEXT,
    TO,
    create_credential,
    create_surface,
    in_thread,
    send_through_worker,
)
from tests.conformance.sdks import SENDERS, Sms
from tests.mock_provider import MockProvider, Recorded

KEPT_DIFFERENCES: dict[str, set[str]] = {}
"""Body fields (per preset) where the preset departs from its SDK on purpose: none today."""


def _wire(recorded: Recorded) -> dict[str, Any]:
    """What must agree: everything but the client's identity headers (User-Agent…)."""
    media = (recorded.header("content-type") or "").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        body: Any = parse_qs(recorded.body.decode(), keep_blank_values=True, strict_parsing=True)
    else:
        body = orjson.loads(recorded.body)
    return {
        "method": recorded.method,
        "path": recorded.path,
        "query": parse_qs(recorded.query),
        "authorization": recorded.header("authorization"),
        "media_type": media,
        "body": body,
    }


def _without(wire: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    body = wire["body"]
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in fields}
    return {**wire, "body": body}


def _as_documented(number: str, digits: bool) -> str:
    """A number as the provider's docs write it (digits only for Vonage and Infobip)."""
    return number.removeprefix("+") if digits and number.startswith("+") else number


async def _compare(
    client: httpx.AsyncClient,
    services: Services,
    recorder: MockProvider,
    preset: str,
    sender: str,
    text: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    provider = PROVIDERS[preset]
    recorder.reply(provider.answer)
    credential = await create_credential(client, preset, recorder)
    surface = await create_surface(client, credential, sender)
    message = await send_through_worker(client, services, surface, text)
    ours = recorder.requests[-1]

    sms = Sms(
        to=_as_documented(TO, provider.digits),
        sender=_as_documented(sender, provider.digits),
        text=text,
        callback=surface["status_webhook_url"],
        client_ref=message["id"],
        unicode=count_segments(text).encoding is Encoding.UCS2,
    )
    sdk_id = await in_thread(SENDERS[preset], recorder.url, provider.account, sms)
    theirs = recorder.requests[-1]
    assert theirs is not ours
    assert message["provider_message_id"] == sdk_id
    kept = KEPT_DIFFERENCES.get(preset, set())
    return _without(_wire(ours), kept), _without(_wire(theirs), kept)


@pytest.mark.parametrize("sender", [NUMBER, ALPHANUMERIC])
@pytest.mark.parametrize("preset", sorted(PROVIDERS))
async def test_the_preset_sends_what_the_official_sdk_sends(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    preset: str,
    sender: str,
) -> None:
    ours, theirs = await _compare(client, services, mock_provider, preset, sender, TEXT)
    assert ours == theirs


async def test_vonage_marks_only_ucs2_text_as_unicode(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    plain, plain_sdk = await _compare(client, services, mock_provider, "vonage", NUMBER, GSM_TEXT)
    wide, wide_sdk = await _compare(client, services, mock_provider, "vonage", NUMBER, TEXT)
    assert (plain, wide) == (plain_sdk, wide_sdk)
    assert plain["body"]["type"] == ["text"]
    assert wide["body"]["type"] == ["unicode"]


async def test_vonage_numeric_sender_loses_its_plus_and_alphanumeric_stays(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    number, _ = await _compare(client, services, mock_provider, "vonage", NUMBER, GSM_TEXT)
    named, _ = await _compare(client, services, mock_provider, "vonage", ALPHANUMERIC, GSM_TEXT)
    assert number["body"]["from"] == [NUMBER.removeprefix("+")]
    assert named["body"]["from"] == [ALPHANUMERIC]
