"""parse_credential: one test per validation rule, each pinned to its field path."""

from __future__ import annotations

from typing import Any

import pytest

from smsbridge.domain.credential_parser import parse_credential
from smsbridge.domain.credentials import (
    Auth,
    AuthType,
    DeliveryReportMapping,
    HeaderParam,
    HeaderType,
    InboundMapping,
)
from smsbridge.domain.field_checks import check_provider_url
from smsbridge.domain.payload import ContentType
from smsbridge.errors import FieldError, InvalidInput
from tests.unit.domain.conftest import CredentialFactory, DocumentFactory

STATIC_HEADER = {"label": "X-Api-Version", "type": "static", "value": "2"}


def _errors(document: dict[str, Any], *, allow_private_urls: bool = False) -> list[FieldError]:
    with pytest.raises(InvalidInput) as caught:
        parse_credential(document, allow_private_urls=allow_private_urls)
    return caught.value.errors


def _fields(document: dict[str, Any], *, allow_private_urls: bool = False) -> list[str]:
    return [e.field for e in _errors(document, allow_private_urls=allow_private_urls)]


# --- a valid document -------------------------------------------------------------------------


def test_api_example_parses(make_credential: CredentialFactory) -> None:
    credential = make_credential()

    assert credential.vendor == "custom"
    assert credential.name == "acme-infobip"
    assert credential.provider_app_id == "app-123"
    assert credential.provider_name == "Infobip"
    assert credential.provider_url == "https://api.example.com/sms/2/text/advanced"
    assert credential.method == "POST"
    assert credential.auth == Auth(AuthType.BEARER, scheme="App", token="s3cret-token")
    assert credential.headers == (
        HeaderParam("X-Api-Version", HeaderType.STATIC, "2"),
        HeaderParam("X-Signature-Key", HeaderType.SECRET, "sig-k3y-value"),
    )
    assert credential.content_type is ContentType.JSON
    assert credential.message_id_path == "$.messages[0].messageId"
    assert credential.rate_limit_per_second == 50.0
    assert credential.template.placeholders == {"toNumber", "fromNumber", "message"}
    assert not credential.is_sandbox


def test_minimal_document_gets_the_defaults() -> None:
    credential = parse_credential(
        {
            "name": "minimal",
            "provider_url": "https://api.example.com/send",
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        },
        allow_private_urls=False,
    )

    assert credential.vendor == "custom"
    assert credential.method == "POST"
    assert credential.content_type is ContentType.JSON
    assert credential.auth == Auth(AuthType.NONE)
    assert credential.headers == ()
    assert credential.provider_app_id == ""
    assert credential.provider_name == ""
    assert credential.message_id_path is None
    assert credential.inbound is None
    assert credential.delivery_reports is None
    assert credential.rate_limit_per_second is None
    assert credential.retry_ambiguous is True
    assert credential.timeout_seconds == 10.0
    assert credential.preset is None
    assert credential.opt_out_error_codes == ()


def test_optional_settings_are_kept(make_credential: CredentialFactory) -> None:
    credential = make_credential(
        method="put",
        timeout_seconds=120,
        retry_ambiguous=False,
        rate_limit_per_second=0.5,
        preset="infobip",
        opt_out_error_codes=[21610, "E-STOP"],
        inbound={"items_path": "$.results[*]", "from_path": "$.from"},
        delivery_reports={
            "items_path": "$.results[*]",
            "status_path": "$.status.groupName",
            "status_map": {"DELIVERED": "delivered", "REJECTED": "failed"},
        },
    )

    assert credential.method == "PUT"
    assert credential.timeout_seconds == 120.0
    assert credential.retry_ambiguous is False
    assert credential.rate_limit_per_second == 0.5
    assert credential.preset == "infobip"
    assert credential.opt_out_error_codes == ("21610", "E-STOP")
    assert credential.inbound == InboundMapping(items_path="$.results[*]", from_path="$.from")
    assert credential.delivery_reports == DeliveryReportMapping(
        items_path="$.results[*]",
        status_path="$.status.groupName",
        status_map={"DELIVERED": "delivered", "REJECTED": "failed"},
    )


def test_payload_is_kept_as_given_even_as_a_string(make_credential: CredentialFactory) -> None:
    text = '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}'

    credential = make_credential(payload=text)

    assert credential.payload == text
    assert credential.template.placeholders == {"toNumber", "fromNumber", "message"}


# --- name, vendor, method, content type -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "is required"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        (42, "must be a string"),
        ("x" * 101, "must be at most 100 characters"),
    ],
)
def test_name_rules(make_document: DocumentFactory, name: object, message: str) -> None:
    assert _errors(make_document(name=name)) == [FieldError("name", message)]


def test_name_is_stripped_and_may_be_100_characters(make_credential: CredentialFactory) -> None:
    assert make_credential(name="  " + "x" * 100 + "  ").name == "x" * 100


def test_unknown_vendor_is_refused(make_document: DocumentFactory) -> None:
    assert _fields(make_document(vendor="twilio-ish")) == ["vendor"]


@pytest.mark.parametrize("method", ["POST", "put", "Patch", "GET"])
def test_supported_methods_are_accepted(make_credential: CredentialFactory, method: str) -> None:
    assert make_credential(method=method).method == method.upper()


@pytest.mark.parametrize("method", ["DELETE", "HEAD", "", "POST "])
def test_other_methods_are_refused(make_document: DocumentFactory, method: str) -> None:
    assert _fields(make_document(method=method)) == ["method"]


def test_unknown_content_type_is_refused(make_document: DocumentFactory) -> None:
    assert _fields(make_document(content_type="text/plain")) == ["content_type"]


def test_form_content_type_is_accepted(make_credential: CredentialFactory) -> None:
    credential = make_credential(
        content_type="application/x-www-form-urlencoded",
        payload={"To": "{{toNumber}}", "From": "{{fromNumber}}", "Body": "{{message}}"},
    )

    assert credential.content_type is ContentType.FORM


# --- provider_url -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "is required"),
        ("  ", "must not be empty"),
        ("ftp://files.example.com/send", "must be an absolute https:// URL"),
        ("/sms/send", "must be an absolute https:// URL"),
        ("https://", "must be an absolute https:// URL"),
        ("api.example.com/send", "must be an absolute https:// URL"),
        ("https://[::1/send", "not a valid URL"),
        ("https://user:pass@api.example.com/send", "must not embed credentials"),
        ("https://user@api.example.com/send", "must not embed credentials"),
        ("https://:pass@api.example.com/send", "must not embed credentials"),
        ("sandbox://other", "the only sandbox is sandbox://default"),
        ("sandbox://default/x", "the only sandbox is sandbox://default"),
    ],
)
def test_provider_url_rules(make_document: DocumentFactory, url: object, message: str) -> None:
    [error] = _errors(make_document(provider_url=url), allow_private_urls=True)

    assert error.field == "provider_url"
    assert error.message.startswith(message)


def test_plain_http_is_refused_by_default(make_document: DocumentFactory) -> None:
    [error] = _errors(make_document(provider_url="http://10.0.0.5:8080/send"))

    assert error.field == "provider_url"
    assert "SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS" in error.message


def test_plain_http_is_accepted_when_private_urls_are_allowed(
    make_document: DocumentFactory,
) -> None:
    credential = parse_credential(
        make_document(provider_url="http://10.0.0.5:8080/send"), allow_private_urls=True
    )

    assert credential.provider_url == "http://10.0.0.5:8080/send"


def test_sandbox_default_is_accepted(make_credential: CredentialFactory) -> None:
    credential = make_credential(provider_url="sandbox://default")

    assert credential.is_sandbox


def test_provider_url_is_stripped(make_credential: CredentialFactory) -> None:
    credential = make_credential(provider_url="  https://api.example.com/send\n")

    assert credential.provider_url == "https://api.example.com/send"


def test_app_id_placeholder_is_allowed_in_the_url(make_credential: CredentialFactory) -> None:
    credential = make_credential(provider_url="https://api.example.com/{{appId}}/send")

    assert credential.url_template.names == {"appId"}


@pytest.mark.parametrize("placeholder", ["{{message}}", "{{foo}}"])
def test_other_placeholders_are_refused_in_the_url(
    make_document: DocumentFactory, placeholder: str
) -> None:
    [error] = _errors(make_document(provider_url=f"https://api.example.com/{placeholder}"))

    assert error.field == "provider_url"
    assert placeholder in error.message


@pytest.mark.parametrize(
    ("url", "allow_private", "accepted"),
    [
        ("https://api.example.com/x", False, True),
        ("HTTPS://api.example.com/x", False, True),
        ("http://api.example.com/x", False, False),
        ("http://api.example.com/x", True, True),
        ("https://{{appId}}.example.com/x", False, True),
        ("sandbox://default", False, True),
        ("sandbox://", False, False),
        ("https://u:p@api.example.com", True, False),
    ],
)
def test_check_provider_url(url: str, allow_private: bool, accepted: bool) -> None:
    assert (check_provider_url(url, allow_private) is None) is accepted


# --- payload ----------------------------------------------------------------------------------


def test_payload_is_required(make_document: DocumentFactory) -> None:
    assert _errors(make_document(payload=None)) == [FieldError("payload", "is required")]


def test_payload_errors_keep_their_paths(make_document: DocumentFactory) -> None:
    fields = _fields(make_document(payload={"to": "{{toNumber}}", "x": "{{bad name}}"}))

    assert fields == ["payload.x", "payload", "payload"]


def test_form_payload_with_a_nested_object_is_refused(make_document: DocumentFactory) -> None:
    document = make_document(
        content_type="application/x-www-form-urlencoded",
        payload={"To": "{{toNumber}}", "From": "{{fromNumber}}", "Msg": {"text": "{{message}}"}},
    )

    assert _fields(document) == ["payload.Msg"]


# --- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ("bearer s3cret", "auth"),
        (["bearer"], "auth"),
        ({"type": "oauth"}, "auth.type"),
        ({"token": "s3cret"}, "auth.type"),
    ],
)
def test_auth_must_be_an_object_with_a_known_type(
    make_document: DocumentFactory, auth: object, field: str
) -> None:
    assert _fields(make_document(auth=auth)) == [field]


def test_auth_defaults_to_none(make_credential: CredentialFactory) -> None:
    assert make_credential(auth=None).auth == Auth(AuthType.NONE)


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"type": "bearer"}, [FieldError("auth.token", "is required")]),
        ({"type": "basic", "password": "pw"}, [FieldError("auth.username", "is required")]),
        ({"type": "basic", "username": "user"}, [FieldError("auth.password", "is required")]),
        (
            {"type": "basic"},
            [
                FieldError("auth.username", "is required"),
                FieldError("auth.password", "is required"),
            ],
        ),
        ({"type": "api_key", "key": "k3y"}, [FieldError("auth.header", "is required")]),
        ({"type": "api_key", "header": "X-Key"}, [FieldError("auth.key", "is required")]),
    ],
)
def test_auth_incomplete_for_its_type(
    make_document: DocumentFactory, auth: dict[str, str], expected: list[FieldError]
) -> None:
    assert _errors(make_document(auth=auth)) == expected


def test_bearer_token_must_not_be_empty(make_document: DocumentFactory) -> None:
    assert _fields(make_document(auth={"type": "bearer", "token": ""})) == ["auth.token"]


@pytest.mark.parametrize("token", ["a\nb", "abc\r\n", " abc", "abc ", "a\x00b", "tok€n"])
def test_bearer_token_must_be_a_clean_header_value(
    make_document: DocumentFactory, token: str
) -> None:
    assert _fields(make_document(auth={"type": "bearer", "token": token})) == ["auth.token"]


@pytest.mark.parametrize(
    ("raw", "scheme"), [({}, "Bearer"), ({"scheme": ""}, "Bearer"), ({"scheme": "App"}, "App")]
)
def test_bearer_scheme(
    make_credential: CredentialFactory, raw: dict[str, str], scheme: str
) -> None:
    credential = make_credential(auth={"type": "bearer", "token": "t0ken", **raw})

    assert credential.auth.scheme == scheme


@pytest.mark.parametrize("scheme", ["Bearer Token", "App:", "Bé"])
def test_bearer_scheme_must_be_one_word(make_document: DocumentFactory, scheme: str) -> None:
    document = make_document(auth={"type": "bearer", "scheme": scheme, "token": "t0ken"})

    assert _fields(document) == ["auth.scheme"]


def test_basic_auth_is_parsed(make_credential: CredentialFactory) -> None:
    credential = make_credential(auth={"type": "basic", "username": "AC123", "password": "p4ss"})

    assert credential.auth == Auth(AuthType.BASIC, username="AC123", password="p4ss")


def test_basic_username_must_not_contain_a_colon(make_document: DocumentFactory) -> None:
    document = make_document(auth={"type": "basic", "username": "a:b", "password": "p4ss"})

    assert _fields(document) == ["auth.username"]


def test_api_key_auth_is_parsed(make_credential: CredentialFactory) -> None:
    credential = make_credential(auth={"type": "api_key", "header": "X-Api-Key", "key": "k3y"})

    assert credential.auth == Auth(AuthType.API_KEY, header="X-Api-Key", key="k3y")


def test_api_key_may_travel_in_the_authorization_header(make_credential: CredentialFactory) -> None:
    credential = make_credential(auth={"type": "api_key", "header": "Authorization", "key": "k"})

    assert credential.auth.header == "Authorization"


@pytest.mark.parametrize(
    "header", ["X Api Key", "X-Key:", "Content-Type", "content-length", "HOST"]
)
def test_api_key_header_must_be_a_usable_header_name(
    make_document: DocumentFactory, header: str
) -> None:
    document = make_document(auth={"type": "api_key", "header": header, "key": "k3y"})

    assert _fields(document) == ["auth.header"]


@pytest.mark.parametrize("key", ["k\n3y", " k3y", "k3y\t"])
def test_api_key_must_be_a_clean_header_value(make_document: DocumentFactory, key: str) -> None:
    document = make_document(auth={"type": "api_key", "header": "X-Key", "key": key})

    assert _fields(document) == ["auth.key"]


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", ["X-A: 1", {"label": "X-A", "value": "1"}])
def test_headers_must_be_a_list(make_document: DocumentFactory, headers: object) -> None:
    assert _fields(make_document(headers=headers)) == ["headers"]


def test_each_header_must_be_an_object(make_document: DocumentFactory) -> None:
    assert _fields(make_document(headers=[STATIC_HEADER, "X-B: 2"])) == ["headers[1]"]


@pytest.mark.parametrize(
    "label",
    [
        "Authorization",
        "authorization",
        "AUTHORIZATION",
        "Content-Type",
        "content-type",
        "Content-Length",
        "CONTENT-LENGTH",
        "Host",
        "host",
        " Host ",
    ],
)
def test_reserved_headers_are_refused_in_any_case(
    make_document: DocumentFactory, label: str
) -> None:
    headers = [STATIC_HEADER, {"label": label, "type": "static", "value": "x"}]

    [error] = _errors(make_document(headers=headers))

    assert error.field == "headers[1].label"
    assert "cannot be set here" in error.message


@pytest.mark.parametrize("label", ["X-Api-Version", "x-api-version", "X-API-VERSION"])
def test_duplicate_header_labels_are_refused_ignoring_case(
    make_document: DocumentFactory, label: str
) -> None:
    headers = [STATIC_HEADER, {"label": label, "type": "secret", "value": "x"}]

    [error] = _errors(make_document(headers=headers))

    assert error.field == "headers[1].label"
    assert error.message.startswith("duplicate header")


@pytest.mark.parametrize("label", ["X Api", "X-Key:", "X(Key)", "Ünïcode", "X\nKey", "a/b"])
def test_header_label_must_be_an_http_token(make_document: DocumentFactory, label: str) -> None:
    headers = [STATIC_HEADER, {"label": label, "type": "static", "value": "x"}]

    [error] = _errors(make_document(headers=headers))

    assert error.field == "headers[1].label"
    assert "not a valid HTTP header name" in error.message


@pytest.mark.parametrize(
    ("label", "message"),
    [(None, "is required"), ("", "must not be empty"), (7, "must be a string")],
)
def test_header_label_is_required(
    make_document: DocumentFactory, label: object, message: str
) -> None:
    headers = [STATIC_HEADER, {"label": label, "type": "static", "value": "x"}]

    assert _errors(make_document(headers=headers)) == [FieldError("headers[1].label", message)]


@pytest.mark.parametrize("header_type", ["private", None, ""])
def test_header_type_must_be_static_or_secret(
    make_document: DocumentFactory, header_type: object
) -> None:
    headers = [{"label": "X-A", "type": header_type, "value": "1"}]

    assert _errors(make_document(headers=headers)) == [
        FieldError("headers[0].type", "must be static or secret")
    ]


def test_header_type_defaults_to_static(make_credential: CredentialFactory) -> None:
    credential = make_credential(headers=[{"label": "X-A", "value": "1"}])

    assert credential.headers == (HeaderParam("X-A", HeaderType.STATIC, "1"),)


@pytest.mark.parametrize("value", [None, ""])
def test_header_value_is_required(make_document: DocumentFactory, value: object) -> None:
    headers = [STATIC_HEADER, {"label": "X-B", "type": "secret", "value": value}]

    assert "headers[1].value" in _fields(make_document(headers=headers))


@pytest.mark.parametrize(
    "value", ["a\nb", "ab\n", "a\rb", "a\r\nX-Evil: 1", "\x00", " padded", "padded ", "€uro"]
)
def test_header_value_must_not_hold_line_breaks_or_controls(
    make_document: DocumentFactory, value: str
) -> None:
    headers = [STATIC_HEADER, {"label": "X-B", "type": "static", "value": value}]

    [error] = _errors(make_document(headers=headers))

    assert error.field == "headers[1].value"
    assert "line breaks" in error.message


@pytest.mark.parametrize("value", ["a\tb", "café", "a b; c=d", "!~"])
def test_header_value_may_hold_tabs_spaces_and_latin1(
    make_credential: CredentialFactory, value: str
) -> None:
    credential = make_credential(headers=[{"label": "X-B", "type": "static", "value": value}])

    assert credential.headers[0].value == value


def test_header_label_is_stripped(make_credential: CredentialFactory) -> None:
    credential = make_credential(headers=[{"label": " X-B ", "type": "static", "value": "v"}])

    assert credential.headers[0].label == "X-B"


# --- response, inbound and delivery report mappings -------------------------------------------


@pytest.mark.parametrize("path", ["$[", "messages[0].id", "$.a[?", "$..", 42])
def test_message_id_path_must_be_a_jsonpath(make_document: DocumentFactory, path: object) -> None:
    assert _fields(make_document(response={"message_id_path": path})) == [
        "response.message_id_path"
    ]


@pytest.mark.parametrize("key", ["response", "inbound", "delivery_reports"])
def test_mappings_must_be_objects(make_document: DocumentFactory, key: str) -> None:
    assert _fields(make_document(**{key: ["$.id"]})) == [key]


@pytest.mark.parametrize("key", ["items_path", "from_path", "to_path", "text_path", "id_path"])
def test_inbound_paths_must_be_jsonpaths(make_document: DocumentFactory, key: str) -> None:
    assert _fields(make_document(inbound={key: "$["})) == [f"inbound.{key}"]


@pytest.mark.parametrize("key", ["items_path", "message_id_path", "status_path", "error_path"])
def test_delivery_report_paths_must_be_jsonpaths(make_document: DocumentFactory, key: str) -> None:
    assert _fields(make_document(delivery_reports={key: "$["})) == [f"delivery_reports.{key}"]


def test_status_map_values_must_be_our_statuses(make_document: DocumentFactory) -> None:
    document = make_document(
        delivery_reports={"status_map": {"DELIVRD": "delivered", "X": "lost", "Y": "Delivered"}}
    )

    assert _fields(document) == ["delivery_reports.status_map.X", "delivery_reports.status_map.Y"]


def test_status_map_must_be_an_object(make_document: DocumentFactory) -> None:
    document = make_document(delivery_reports={"status_map": ["delivered"]})

    assert _fields(document) == ["delivery_reports.status_map"]


@pytest.mark.parametrize("value", [["delivered"], {"status": "delivered"}])
def test_status_map_value_of_the_wrong_type_is_a_field_error(
    make_document: DocumentFactory, value: object
) -> None:
    document = make_document(delivery_reports={"status_map": {"X": value}})

    assert _fields(document) == ["delivery_reports.status_map.X"]


# --- numbers and flags ------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, -1, 100_001, True, "5", float("nan"), float("inf")])
def test_rate_limit_must_be_in_range(make_document: DocumentFactory, rate: object) -> None:
    assert _fields(make_document(rate_limit_per_second=rate)) == ["rate_limit_per_second"]


@pytest.mark.parametrize("rate", [0.01, 1, 100_000])
def test_rate_limit_accepts_the_range(make_credential: CredentialFactory, rate: float) -> None:
    assert make_credential(rate_limit_per_second=rate).rate_limit_per_second == float(rate)


@pytest.mark.parametrize("timeout", [0, -5, 120.5, False, "10", float("nan")])
def test_timeout_must_be_in_range(make_document: DocumentFactory, timeout: object) -> None:
    assert _fields(make_document(timeout_seconds=timeout)) == ["timeout_seconds"]


@pytest.mark.parametrize("flag", ["yes", 1, 0])
def test_retry_ambiguous_must_be_a_bool(make_document: DocumentFactory, flag: object) -> None:
    assert _fields(make_document(retry_ambiguous=flag)) == ["retry_ambiguous"]


@pytest.mark.parametrize("codes", ["21610", [1.5], [["E1"]], {"E1": 1}])
def test_opt_out_error_codes_must_be_a_list_of_codes(
    make_document: DocumentFactory, codes: object
) -> None:
    assert _fields(make_document(opt_out_error_codes=codes)) == ["opt_out_error_codes"]


# --- many problems at once --------------------------------------------------------------------


def test_several_errors_are_reported_together(make_document: DocumentFactory) -> None:
    document = make_document(
        name="",
        provider_url="http://api.example.com/send",
        auth={"type": "basic", "username": "a:b"},
        headers=[{"label": "Host", "value": "x"}, {"label": "X-A", "value": "1\n"}],
        payload={"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{msg}}"},
        response={"message_id_path": "$["},
        rate_limit_per_second=0,
        timeout_seconds=0,
    )

    with pytest.raises(InvalidInput) as caught:
        parse_credential(document, allow_private_urls=False)

    assert [e.field for e in caught.value.errors] == [
        "name",
        "provider_url",
        "payload.text",
        "payload",
        "auth.username",
        "auth.password",
        "headers[0].label",
        "headers[1].value",
        "response.message_id_path",
        "rate_limit_per_second",
        "timeout_seconds",
    ]
    assert caught.value.message.startswith("11 problems with the input (name, provider_url,")


# --- secret values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"type": "bearer", "token": "t0ken"}, {"auth.token": "t0ken"}),
        ({"type": "basic", "username": "user", "password": "pw"}, {"auth.password": "pw"}),
        ({"type": "api_key", "header": "X-Key", "key": "k3y"}, {"auth.key": "k3y"}),
        ({"type": "none"}, {}),
    ],
)
def test_secret_values(
    make_credential: CredentialFactory, auth: dict[str, str], expected: dict[str, str]
) -> None:
    credential = make_credential(
        auth=auth,
        headers=[
            {"label": "X-Static", "type": "static", "value": "public"},
            {"label": "X-Sig", "type": "secret", "value": "sig-value"},
            {"label": "X-Other", "type": "secret", "value": "other-value"},
        ],
    )

    assert credential.secret_values() == {
        **expected,
        "headers.X-Sig": "sig-value",
        "headers.X-Other": "other-value",
    }
