"""The credential form's problems in the form's words (web/credential_problems.py), without a
server: the API's messages that name a setting or an internal path, as the admin shows them."""

from __future__ import annotations

from smsbridge.web.credential_problems import header_errors, in_admin_words, problem_list


def test_the_https_refusal_speaks_of_https_not_of_a_setting() -> None:
    worded = in_admin_words(
        "provider_url",
        "must use https; plain http is only accepted when "
        "SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS is true",
    )
    assert "https://" in worded and "SMSBRIDGE" not in worded


def test_header_rows_are_named_from_one_and_listed_in_the_forms_order() -> None:
    errors = {"headers[1].value": "is required", "provider_url": "bad", "name": "taken"}
    assert header_errors(errors) == {1: "Header row 2: its value is required."}
    labels = [p.label for p in problem_list(errors)]
    assert labels[:2] == ["Name", "Provider URL"] and labels[2].startswith("Header row 2")
    assert all("headers[" not in p.label for p in problem_list(errors))
