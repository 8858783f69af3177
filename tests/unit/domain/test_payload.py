"""Structure-aware payload rendering: JSON and form bodies, URL templates, template errors."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsbridge.domain.payload import (
    ALLOWED_PLACEHOLDERS,
    ContentType,
    PayloadTemplate,
    Placeholder,
    TextTemplate,
    UrlTemplate,
    load_payload,
    parse_text,
)
from smsbridge.errors import FieldError, InvalidInput, LimitExceeded

FLAT = {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}

NESTED = {
    "messages": [
        {
            "from": "{{fromNumber}}",
            "destinations": [{"to": "{{toNumber}}"}],
            "text": "{{message}}",
        }
    ],
    "reference": "ref-{{messageId}}",
    "notify": {"url": "{{statusCallbackUrl}}", "app": "{{appId}}"},
    "flash": False,
    "validity": 3600,
    "ratio": 0.5,
    "note": None,
}

FORM = {
    "To": "{{toNumber}}",
    "From": "{{fromNumber}}",
    "Body": "{{message}}",
    "Reference": "id-{{messageId}}",
    "Flash": False,
    "Count": 2,
    "Empty": None,
}

# Fragments that break naive string templating; mixed into generated text.
TRICKY = (
    '"',
    "'",
    "\\",
    "\\u0022",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\u2028",
    "\ufeff",
    "😀",
    "é",
    "{{message}}",
    "{{toNumber}}",
    "{{",
    "}}",
    "{",
    "}",
    "&",
    "=",
    "+",
    "%",
    "%20",
    ";",
    "#",
    "?",
    " ",
    '","to":"+1',
)

any_text = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=5))).map("".join),
)


def _values(
    *,
    to: str = "+33612345678",
    sender: str = "+15550001111",
    message: str = "Hi",
    message_id: str = "msg_1",
    callback: str = "https://sms.example.test/dlr",
    app_id: str = "app-123",
) -> dict[str, str]:
    return {
        "toNumber": to,
        "fromNumber": sender,
        "message": message,
        "messageId": message_id,
        "statusCallbackUrl": callback,
        "appId": app_id,
    }


def _compile_errors(payload: object, content_type: ContentType = ContentType.JSON) -> list[Any]:
    with pytest.raises(InvalidInput) as caught:
        PayloadTemplate.compile(payload, content_type)
    return caught.value.errors


# --- the property: any text is sent verbatim and never changes the structure -----------------


@given(message=any_text, to=any_text, sender=any_text, message_id=any_text, app_id=any_text)
def test_json_body_carries_any_text_verbatim_in_an_unchanged_structure(
    message: str, to: str, sender: str, message_id: str, app_id: str
) -> None:
    template = PayloadTemplate.compile(NESTED, ContentType.JSON)
    values = _values(to=to, sender=sender, message=message, message_id=message_id, app_id=app_id)

    document = json.loads(template.render(values))

    assert document["messages"][0]["text"] == message
    assert document == {
        "messages": [{"from": sender, "destinations": [{"to": to}], "text": message}],
        "reference": "ref-" + message_id,
        "notify": {"url": "https://sms.example.test/dlr", "app": app_id},
        "flash": False,
        "validity": 3600,
        "ratio": 0.5,
        "note": None,
    }


@given(message=any_text, to=any_text, sender=any_text, message_id=any_text)
def test_form_body_carries_any_text_verbatim_in_an_unchanged_structure(
    message: str, to: str, sender: str, message_id: str
) -> None:
    template = PayloadTemplate.compile(FORM, ContentType.FORM)
    values = _values(to=to, sender=sender, message=message, message_id=message_id)

    # Form bodies are pure ASCII: text travels as UTF-8 percent-encoding.
    body = template.render(values).decode("ascii")

    parsed = parse_qs(body, keep_blank_values=True, encoding="utf-8", errors="strict")
    assert parsed["Body"] == [message]
    assert parsed == {
        "To": [to],
        "From": [sender],
        "Body": [message],
        "Reference": ["id-" + message_id],
        "Flash": ["false"],
        "Count": ["2"],
        "Empty": [""],
    }
    assert [key for key, _ in parse_qsl(body, keep_blank_values=True)] == list(FORM)


# --- rendering vectors ------------------------------------------------------------------------


def test_json_render_gives_compact_exact_bytes() -> None:
    template = PayloadTemplate.compile(FLAT, ContentType.JSON)

    body = template.render(_values(message='say "hi"\n'))

    assert body == b'{"to":"+33612345678","from":"+15550001111","text":"say \\"hi\\"\\n"}'


def test_numbers_bools_and_null_are_kept_as_is() -> None:
    payload = {
        **FLAT,
        "int": 7,
        "negative": -3,
        "large": 9007199254740993,
        "float": 1.25,
        "true": True,
        "false": False,
        "null": None,
        "list": [1, "two", None, False],
    }
    template = PayloadTemplate.compile(payload, ContentType.JSON)

    document = json.loads(template.render(_values()))

    assert document == {**payload, "to": "+33612345678", "from": "+15550001111", "text": "Hi"}
    assert type(document["int"]) is int
    assert type(document["float"]) is float
    assert template.render_document(_values()) == document


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1])
def test_integers_beyond_64_bits_are_refused_or_kept(number: int) -> None:
    try:
        template = PayloadTemplate.compile({**FLAT, "n": number}, ContentType.JSON)
    except InvalidInput:
        return  # refusing it when the credential is saved is acceptable too
    assert json.loads(template.render(_values()))["n"] == number


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_refused(literal: str) -> None:
    text = '{"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}", "n": %s}'
    with pytest.raises(InvalidInput):
        PayloadTemplate.compile(text % literal, ContentType.JSON)


def test_placeholder_inside_literal_text_is_substituted_in_place() -> None:
    template = PayloadTemplate.compile(
        {**FLAT, "text": "Code: {{message}} (ref {{messageId}})"}, ContentType.JSON
    )

    document = json.loads(template.render(_values(message="1234", message_id="m-9")))

    assert document["text"] == "Code: 1234 (ref m-9)"


def test_value_holding_a_placeholder_name_is_not_substituted_again() -> None:
    template = PayloadTemplate.compile(FLAT, ContentType.JSON)

    document = json.loads(template.render(_values(message="{{toNumber}}", to="+1")))

    assert document == {"to": "+1", "from": "+15550001111", "text": "{{toNumber}}"}


def test_placeholder_with_spaces_is_accepted() -> None:
    payload = {"to": "{{ toNumber }}", "from": "{{fromNumber  }}", "text": "{{\tmessage}}"}

    template = PayloadTemplate.compile(payload, ContentType.JSON)

    assert json.loads(template.render(_values())) == {
        "to": "+33612345678",
        "from": "+15550001111",
        "text": "Hi",
    }


def test_payload_given_as_a_json_string_renders_like_the_object() -> None:
    as_object = PayloadTemplate.compile(NESTED, ContentType.JSON)
    as_string = PayloadTemplate.compile(json.dumps(NESTED), ContentType.JSON)

    assert as_string.render(_values()) == as_object.render(_values())


def test_compiled_template_lists_its_placeholders_and_content_type() -> None:
    template = PayloadTemplate.compile(NESTED, ContentType.JSON)

    assert template.placeholders == ALLOWED_PLACEHOLDERS - {
        "toNumberDigits",
        "fromNumberDigits",
        "encoding",
    }
    assert template.content_type is ContentType.JSON
    assert PayloadTemplate.compile(FLAT, ContentType.FORM).placeholders == {
        "toNumber",
        "fromNumber",
        "message",
    }


def test_form_body_percent_encodes_utf8_and_uses_plus_for_spaces() -> None:
    template = PayloadTemplate.compile(FLAT, ContentType.FORM)

    body = template.render(_values(message="é & ü=😀 ok"))

    assert body == b"to=%2B33612345678&from=%2B15550001111&text=%C3%A9+%26+%C3%BC%3D%F0%9F%98%80+ok"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(True, "true"), (False, "false"), (None, ""), (42, "42"), (1.5, "1.5"), ("x y", "x+y")],
)
def test_form_scalars_are_encoded_as_text(value: object, encoded: str) -> None:
    template = PayloadTemplate.compile({**FLAT, "extra": value}, ContentType.FORM)

    body = template.render(_values()).decode("ascii")

    assert body.endswith("&extra=" + encoded)


def test_custom_required_placeholders() -> None:
    template = PayloadTemplate.compile({"ping": "pong"}, ContentType.JSON, required=())

    assert template.render({}) == b'{"ping":"pong"}'
    with pytest.raises(InvalidInput) as caught:
        PayloadTemplate.compile({"ping": "pong"}, ContentType.JSON, required=("message",))
    assert caught.value.errors == [FieldError("payload", "must contain {{message}}")]


# --- compile errors ---------------------------------------------------------------------------


def test_unknown_placeholder_is_named_in_the_error() -> None:
    errors = _compile_errors({**FLAT, "ref": "{{ to_number }}"})

    assert [e.field for e in errors] == ["payload.ref"]
    assert "unknown placeholder {{to_number}}" in errors[0].message
    assert "{{toNumber}}" in errors[0].message  # the allowed names are listed


def test_unknown_placeholder_in_a_nested_array_is_reported_at_its_path() -> None:
    payload = {
        "messages": [
            {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            {"ref": "{{msgId}}"},
        ]
    }

    errors = _compile_errors(payload)

    assert [e.field for e in errors] == ["payload.messages[1].ref"]
    assert "{{msgId}}" in errors[0].message


@pytest.mark.parametrize("missing", ["toNumber", "fromNumber", "message"])
def test_each_missing_required_placeholder_is_reported(missing: str) -> None:
    payload = {key: value for key, value in FLAT.items() if value != "{{" + missing + "}}"}

    errors = _compile_errors(payload)

    assert errors == [FieldError("payload", "must contain {{" + missing + "}}")]


def test_all_missing_required_placeholders_are_reported_together() -> None:
    errors = _compile_errors({"text": "hello"})

    assert errors == [
        FieldError("payload", "must contain {{toNumber}}"),
        FieldError("payload", "must contain {{fromNumber}}"),
        FieldError("payload", "must contain {{message}}"),
    ]


@pytest.mark.parametrize(
    "placeholder", ["{{}}", "{{ }}", "{{to-number}}", "{{to number}}", "{{1st}}", "{{a\nb}}"]
)
def test_malformed_placeholder_is_reported(placeholder: str) -> None:
    errors = _compile_errors({**FLAT, "ref": placeholder})

    assert len(errors) == 1
    assert errors[0].field == "payload.ref"
    assert errors[0].message.startswith("malformed placeholder")
    assert placeholder.replace("\n", "\\n") in errors[0].message


def test_placeholder_in_a_key_is_refused() -> None:
    errors = _compile_errors({**FLAT, "{{messageId}}": "x"})

    assert errors == [
        FieldError("payload.{{messageId}}", "placeholders are only allowed in values")
    ]


def test_placeholder_in_a_form_key_is_refused() -> None:
    errors = _compile_errors({**FLAT, "x{{appId}}": "1"}, ContentType.FORM)

    assert [e.field for e in errors] == ["payload.x{{appId}}"]


def test_form_payload_with_a_nested_value_is_refused_at_its_key() -> None:
    payload = {**FLAT, "options": {"flash": True}, "tags": ["a"]}

    errors = _compile_errors(payload, ContentType.FORM)

    assert [e.field for e in errors] == ["payload.options", "payload.tags"]
    assert all("flat" in e.message for e in errors)


def test_nested_objects_are_fine_for_json() -> None:
    payload = {**FLAT, "options": {"flash": True}, "tags": ["a"]}

    template = PayloadTemplate.compile(payload, ContentType.JSON)

    assert json.loads(template.render(_values()))["options"] == {"flash": True}


def test_value_of_an_unsupported_type_is_refused() -> None:
    errors = _compile_errors({**FLAT, "when": object()})

    assert errors == [FieldError("payload.when", "unsupported value of type object")]


def test_every_problem_is_listed_in_one_error() -> None:
    errors = _compile_errors({"to": "{{nope}}", "{{appId}}": "1", "x": "{{}}"})

    assert [e.field for e in errors] == [
        "payload.to",
        "payload.{{appId}}",
        "payload.x",
        "payload",
        "payload",
        "payload",
    ]


def test_field_name_prefixes_error_paths() -> None:
    with pytest.raises(InvalidInput) as caught:
        PayloadTemplate.compile({**FLAT, "x": "{{nope}}"}, ContentType.JSON, field="body")

    assert [e.field for e in caught.value.errors] == ["body.x"]


# --- load_payload -----------------------------------------------------------------------------


def test_load_payload_accepts_an_object_or_a_string_holding_one() -> None:
    assert load_payload({"a": 1}) == {"a": 1}
    assert load_payload('{"a": [1, "{{message}}"]}') == {"a": [1, "{{message}}"]}


def test_string_that_is_not_json_reports_line_and_column() -> None:
    text = '{\n  "to": "{{toNumber}}",\n  oops\n}'

    with pytest.raises(InvalidInput) as caught:
        load_payload(text)

    [error] = caught.value.errors
    assert error.field == "payload"
    assert error.message.startswith("not valid JSON at line 3, column 3:")
    assert "placeholders must sit inside quoted strings" not in error.message


@pytest.mark.parametrize(
    "text",
    [
        '{"to": {{toNumber}}, "text": "{{message}}"}',
        '{"to": "x", "items": [{{message}}]}',
    ],
)
def test_unquoted_placeholder_gets_a_hint(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_payload(text)

    [error] = caught.value.errors
    assert error.message.startswith("not valid JSON at line 1, column ")
    assert 'placeholders must sit inside quoted strings, e.g. "{{toNumber}}"' in error.message


@pytest.mark.parametrize("payload", [[], [FLAT], 42, 1.5, True, None, "[1, 2]", '"text"', "null"])
def test_non_object_payload_is_refused(payload: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_payload(payload, field="data")

    assert caught.value.errors == [
        FieldError("data", "must be a JSON object (or a string holding one)")
    ]


def test_compile_refuses_a_non_object_payload() -> None:
    assert _compile_errors("[]") == [
        FieldError("payload", "must be a JSON object (or a string holding one)")
    ]


# --- parse_text and TextTemplate --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", ("",)),
        ("plain", ("plain",)),
        ("{{message}}", (Placeholder("message"),)),
        ("a {{ toNumber }} b", ("a ", Placeholder("toNumber"), " b")),
        ("{{toNumber}}{{message}}", (Placeholder("toNumber"), Placeholder("message"))),
        ("{{message}}}}", (Placeholder("message"), "}}")),
        ("{{message", ("{{message",)),
        ("}} {{", ("}} {{",)),
    ],
)
def test_parse_text_splits_literals_and_placeholders(text: str, parts: tuple[object, ...]) -> None:
    template, errors = parse_text(text, "f", ALLOWED_PLACEHOLDERS)

    assert errors == []
    assert template.parts == parts


def test_parse_text_reports_against_the_allowed_names() -> None:
    template, errors = parse_text("{{message}} {{appId}}", "f", frozenset({"appId"}))

    assert template.names == {"appId"}
    assert len(errors) == 1
    assert errors[0].field == "f"
    assert errors[0].message == "unknown placeholder {{message}}; allowed: {{appId}}"


@pytest.mark.parametrize(
    ("parts", "rendered"),
    [
        (("",), ""),
        (("lit",), "lit"),
        ((Placeholder("message"),), "M"),
        (("<", Placeholder("message"), "|", Placeholder("toNumber"), ">"), "<M|T>"),
    ],
)
def test_text_template_render(parts: tuple[str | Placeholder, ...], rendered: str) -> None:
    assert TextTemplate(parts).render({"message": "M", "toNumber": "T"}) == rendered


# --- UrlTemplate ------------------------------------------------------------------------------


def test_url_template_percent_encodes_the_app_id() -> None:
    template = UrlTemplate.compile("https://api.example.com/Accounts/{{appId}}/Messages.json")

    url = template.render({"appId": "AC 1/2?x=y#z&é"})

    assert url == "https://api.example.com/Accounts/AC%201%2F2%3Fx%3Dy%23z%26%C3%A9/Messages.json"
    assert template.names == {"appId"}


def test_url_template_without_placeholders_is_unchanged() -> None:
    template = UrlTemplate.compile("https://api.example.com/send?x=1")

    assert template.render({"appId": "ignored"}) == "https://api.example.com/send?x=1"
    assert template.names == frozenset()


@pytest.mark.parametrize("placeholder", ["{{message}}", "{{toNumber}}", "{{foo}}", "{{}}"])
def test_url_template_refuses_anything_but_app_id(placeholder: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        UrlTemplate.compile(f"https://api.example.com/{placeholder}")

    assert [e.field for e in caught.value.errors] == ["provider_url"]


# --- limits (issue 15, points 1 and 10): size, depth and placeholders --------------------------


def _nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {"to": "{{toNumber}}", "from": "{{fromNumber}}", "m": "{{message}}"}
    for _ in range(depth - 1):
        document = {"x": document}
    return document


@pytest.mark.parametrize(
    "payload",
    [
        _nested(10_000),
        "[" * 10_000 + "]" * 10_000,
        '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}",
        _nested(33),
    ],
    ids=["object-10000", "text-array-10000", "text-object-10000", "object-33"],
)
def test_a_deeply_nested_payload_is_refused(payload: object) -> None:
    with pytest.raises(LimitExceeded) as caught:
        PayloadTemplate.compile(payload, ContentType.JSON)
    assert caught.value.errors[0].field == "payload"
    assert "nested more than 32 levels deep" in caught.value.errors[0].message


def test_a_payload_32_levels_deep_is_fine() -> None:
    template = PayloadTemplate.compile(_nested(32), ContentType.JSON)
    assert b'"m":"hi"' in template.render({"toNumber": "+1", "fromNumber": "+2", "message": "hi"})


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ('{"m": "{{message}}", "pad": "' + "x" * 70_000 + '"}', "the limit is 65,536"),
        ({"m": "{{message}}", **{f"k{i}": "v" * 100 for i in range(1_000)}}, "65,536"),
        ({"m": "{{message}}" * 101}, "more than 100 placeholders"),
    ],
    ids=["text", "object", "placeholders"],
)
def test_a_payload_over_the_size_limits_is_refused(payload: object, fragment: str) -> None:
    with pytest.raises(LimitExceeded) as caught:
        PayloadTemplate.compile(payload, ContentType.JSON)
    assert caught.value.errors[0].field == "payload"
    assert fragment in caught.value.errors[0].message
