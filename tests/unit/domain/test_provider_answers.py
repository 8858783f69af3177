"""Reading provider responses: message ids, status summaries, redaction."""

from __future__ import annotations

import pytest

from smsbridge.domain.provider_answers import extract_message_id, redact, summarize_status

BODY = (
    b'{"messages": [{"messageId": "abc-123", "status": {"id": 7}}],'
    b' "sid": "SM42", "num": 98765, "ratio": 1.5, "flag": true, "none": null, "list": [1]}'
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.messages[0].messageId", "abc-123"),
        ("$.sid", "SM42"),
        ("$['sid']", "SM42"),
        ("$..messageId", "abc-123"),
        ("$.num", "98765"),
        ("$.ratio", "1.5"),
        ("$.messages[0].status.id", "7"),
    ],
)
def test_message_id_found(path: str, expected: str) -> None:
    assert extract_message_id(BODY, path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "$.missing",
        "$.messages[5].messageId",
        "$.messages[0].status",
        "$.messages",
        "$.list",
        "$.flag",
        "$.none",
        "$[",
        "",
        None,
    ],
)
def test_message_id_not_found(path: str | None) -> None:
    assert extract_message_id(BODY, path) is None


@pytest.mark.parametrize(
    "body", [b"", b"OK", b"<html>error</html>", b'{"sid": "SM42"', b"\xff\xfe", b"null"]
)
def test_message_id_of_a_body_that_is_not_usable_json(body: bytes) -> None:
    assert extract_message_id(body, "$.sid") is None


def test_message_id_is_cut_to_200_characters() -> None:
    body = b'{"id": "' + b"x" * 500 + b'"}'

    assert extract_message_id(body, "$.id") == "x" * 200


def test_message_id_from_a_top_level_array() -> None:
    assert extract_message_id(b'[{"id": "first"}, {"id": "second"}]', "$[1].id") == "second"


@pytest.mark.parametrize(
    ("status", "summary"),
    [
        (401, "provider rejected the credentials (401)"),
        (403, "provider rejected the credentials (403)"),
        (404, "provider URL not found (404)"),
        (429, "provider rate limit reached (429)"),
        (301, "provider answered with a redirect (301); redirects are not followed"),
        (302, "provider answered with a redirect (302); redirects are not followed"),
        (399, "provider answered with a redirect (399); redirects are not followed"),
        (400, "provider refused the request (400)"),
        (422, "provider refused the request (422)"),
        (499, "provider refused the request (499)"),
        (500, "provider error (500)"),
        (503, "provider error (503)"),
        (599, "provider error (599)"),
        (200, "unexpected provider status (200)"),
        (100, "unexpected provider status (100)"),
    ],
)
def test_summarize_status(status: int, summary: str) -> None:
    assert summarize_status(status) == summary


@pytest.mark.parametrize(
    ("text", "secrets", "redacted"),
    [
        ("token=s3cret", ["s3cret"], "token=****"),
        ("s3cret and s3cret", ["s3cret"], "**** and ****"),
        ("key abcdef", ["abc", "abcdef"], "key ****"),
        ("key abcdef", ["abcdef", "abc"], "key ****"),
        ("a=one b=two", ["one", "two"], "a=**** b=****"),
        ("nothing here", ["s3cret"], "nothing here"),
        ("keep all", ["", "zzz"], "keep all"),
        ("", ["s3cret"], ""),
    ],
)
def test_redact(text: str, secrets: list[str], redacted: str) -> None:
    assert redact(text, secrets) == redacted


def test_redact_accepts_any_iterable() -> None:
    assert redact("a s3cret b", (s for s in ["s3cret"])) == "a **** b"


@pytest.mark.parametrize(
    ("body", "codes"),
    [
        (b'{"code": 21610, "message": "unsubscribed"}', {"21610"}),
        (b'{"errors": [{"code": "40300"}, {"code": "10001"}]}', {"40300", "10001"}),
        (b'{"messages": [{"status": "0", "error-code": "200"}]}', {"200"}),
        (b'{"error": {"errorCode": 7}}', {"7"}),
        (b'{"code": true, "codes": [1]}', set()),
        (b"not json", set()),
        (b"", set()),
    ],
)
def test_error_codes(body: bytes, codes: set[str]) -> None:
    from smsbridge.domain.provider_answers import error_codes

    assert error_codes(body) == codes
