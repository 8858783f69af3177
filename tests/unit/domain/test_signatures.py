"""Twilio request signatures against the documented example, and what must not verify."""

from __future__ import annotations

from smsbridge.domain.signatures import twilio_signature, twilio_signature_valid

# https://www.twilio.com/docs/usage/security — the documented example request.
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675310",
    "Digits": "1234",
    "From": "+14158675310",
    "To": "+18005551212",
}
DOCUMENTED = "GvWf1cFY/Q7PnoempGyD5oXAezc="


def test_documented_vector() -> None:
    assert twilio_signature(TOKEN, URL, PARAMS) == DOCUMENTED
    assert twilio_signature_valid(TOKEN, DOCUMENTED, URL, PARAMS)


def test_tampered_requests_do_not_verify() -> None:
    assert not twilio_signature_valid(TOKEN, DOCUMENTED, URL, {**PARAMS, "Digits": "1235"})
    assert not twilio_signature_valid(TOKEN, DOCUMENTED, URL, {**PARAMS, "Extra": "1"})
    assert not twilio_signature_valid(TOKEN, DOCUMENTED, URL.replace("mycompany", "evil"), PARAMS)
    assert not twilio_signature_valid(TOKEN, DOCUMENTED, URL + "&baz=3", PARAMS)
    assert not twilio_signature_valid("54321", DOCUMENTED, URL, PARAMS)
    assert not twilio_signature_valid(TOKEN, None, URL, PARAMS)
    assert not twilio_signature_valid(TOKEN, "", URL, PARAMS)
    assert not twilio_signature_valid("", DOCUMENTED, URL, PARAMS)


def test_a_port_may_or_may_not_be_part_of_what_was_signed() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    signed_with_port = twilio_signature(TOKEN, with_port, PARAMS)
    assert twilio_signature_valid(TOKEN, signed_with_port, URL, PARAMS)
    assert twilio_signature_valid(TOKEN, DOCUMENTED, with_port, PARAMS)
    custom = "https://sms.example.test:8443/hooks/status/tok"
    signed = twilio_signature(TOKEN, custom, {"MessageSid": "SM1"})
    assert twilio_signature_valid(TOKEN, signed, custom, {"MessageSid": "SM1"})
    other_port = "https://sms.example.test:9443/hooks/status/tok"
    assert not twilio_signature_valid(TOKEN, signed, other_port, {"MessageSid": "SM1"})


# The example of the Standard Webhooks specification (standardwebhooks.com).
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = "1614265330"
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _headers(signature: str = SW_SIGNATURE, timestamp: str = SW_TIMESTAMP) -> dict[str, str]:
    return {"webhook-id": SW_ID, "webhook-timestamp": timestamp, "webhook-signature": signature}


def test_standard_webhooks_vector() -> None:
    from smsbridge.domain.signatures import standard_webhooks_signature, standard_webhooks_valid

    assert standard_webhooks_signature(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY) == SW_SIGNATURE
    assert standard_webhooks_valid(SW_SECRET, _headers(), SW_BODY, now=1614265330 + 299)


def test_standard_webhooks_refusals() -> None:
    from smsbridge.domain.signatures import standard_webhooks_valid

    now = 1614265330.0
    assert not standard_webhooks_valid(SW_SECRET, _headers(), b'{"test": 2432232315}', now)
    assert not standard_webhooks_valid(SW_SECRET, _headers(), SW_BODY, now + 301)  # too old
    assert not standard_webhooks_valid(SW_SECRET, _headers(), SW_BODY, now - 301)  # from ahead
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    assert not standard_webhooks_valid(other, _headers(), SW_BODY, now)
    assert not standard_webhooks_valid(SW_SECRET, _headers("v1,AAAA"), SW_BODY, now)
    assert not standard_webhooks_valid(SW_SECRET, _headers(timestamp="soon"), SW_BODY, now)
    assert not standard_webhooks_valid(SW_SECRET, {}, SW_BODY, now)
    assert not standard_webhooks_valid(
        SW_SECRET, _headers(SW_SIGNATURE.replace("v1,", "v2,")), SW_BODY, now
    )


def test_standard_webhooks_several_signatures_for_rotation() -> None:
    from smsbridge.domain.signatures import standard_webhooks_valid

    rotating = f"v1,bm90LXRoZS1vbmU= {SW_SIGNATURE} v1a,ignored"
    assert standard_webhooks_valid(SW_SECRET, _headers(rotating), SW_BODY, 1614265330.0)
