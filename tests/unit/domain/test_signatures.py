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
