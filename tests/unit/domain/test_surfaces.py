"""parse_surface and check_sender: one test per validation rule, pinned to its field path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsbridge.domain.surfaces import (
    LinkTracking,
    MessageType,
    Surface,
    check_sender,
    parse_surface,
)
from smsbridge.errors import FieldError, InvalidInput

SurfaceDocumentFactory = Callable[..., dict[str, Any]]

VALID_SURFACE: dict[str, Any] = {
    "name": "acme-alerts",
    "credential_id": "cred-primary",
    "sender": "ACME",
}

EXPECTED_DEFAULT_KEYWORDS = {
    "opt_out": ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
    "opt_in": ("START", "YES", "UNSTOP", "SUBSCRIBE"),
    "help": ("HELP", "INFO"),
}
GENERIC_SENDER_PROBLEM = (
    "must be an E.164 number (+15550001111), a short code (3-8 digits) or an "
    "alphanumeric sender id (1-11 letters, digits or spaces)"
)


@pytest.fixture
def make_surface_doc() -> SurfaceDocumentFactory:
    """A minimal valid surface document, with top-level keys overridden (None removes one)."""

    def make(**overrides: Any) -> dict[str, Any]:
        document = copy.deepcopy(VALID_SURFACE)
        document.update(overrides)
        return {k: v for k, v in document.items() if v is not None}

    return make


def _errors(document: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(InvalidInput) as caught:
        parse_surface(document)
    return caught.value.errors


def _fields(document: dict[str, Any]) -> list[str]:
    return [e.field for e in _errors(document)]


# --- defaults --------------------------------------------------------------------------------


def test_minimal_document_gets_the_defaults(make_surface_doc: SurfaceDocumentFactory) -> None:
    surface = parse_surface(make_surface_doc())
    assert surface.name == "acme-alerts"
    assert surface.credential_id == "cred-primary"
    assert surface.sender == "ACME"
    assert surface.message_type is MessageType.TRANSACTIONAL
    assert surface.fallback_credential_ids == ()
    assert surface.link_tracking == LinkTracking(enabled=False, base_url=None)
    assert dict(surface.keywords) == EXPECTED_DEFAULT_KEYWORDS
    assert set(surface.replies) == {"opt_out", "opt_in", "help", "confirm_opt_in"}
    assert surface.double_opt_in is False
    assert all(surface.replies.values())


def test_defaults_are_not_shared_between_surfaces(
    make_surface_doc: SurfaceDocumentFactory,
) -> None:
    first = parse_surface(make_surface_doc())
    second = parse_surface(make_surface_doc(keywords={"help": ["AIDE"]}))
    assert first.keywords["help"] == ("HELP", "INFO")
    assert second.keywords["help"] == ("AIDE",)


def test_every_problem_is_reported_at_once(make_surface_doc: SurfaceDocumentFactory) -> None:
    document = make_surface_doc(
        name="two\nlines",
        credential_id="",
        sender="12",
        message_type="promo",
        link_tracking={"base_url": "ftp://x.example"},
        keywords={"spam": ["X"]},
        replies={"help": 5},
    )
    assert _fields(document) == [
        "name",
        "credential_id",
        "sender",
        "message_type",
        "link_tracking.base_url",
        "keywords.spam",
        "replies.help",
    ]


# --- name and credential ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "Acme",
        "acme-sms_1.prod",
        "A.b-c_d9",
        "a" * 100,
        "Acme alerts",  # spaces, as in credential and campaign names
        "Promo (FR) / été",
        "1acme",
        "_acme",
    ],
)
def test_valid_names(make_surface_doc: SurfaceDocumentFactory, name: str) -> None:
    assert parse_surface(make_surface_doc(name=name)).name == name


def test_names_are_kept_trimmed(make_surface_doc: SurfaceDocumentFactory) -> None:
    assert parse_surface(make_surface_doc(name="  Acme alerts ")).name == "Acme alerts"
    assert parse_surface(make_surface_doc(name=" " + "a" * 100 + " ")).name == "a" * 100


@pytest.mark.parametrize(
    "name", ["", "   ", "a" * 101, "acme\tsms", "acme\x00", "two\nlines", 42, ["a"], None]
)
def test_invalid_names(make_surface_doc: SurfaceDocumentFactory, name: object) -> None:
    assert _fields(make_surface_doc(name=name)) == ["name"]


def test_missing_name(make_surface_doc: SurfaceDocumentFactory) -> None:
    document = make_surface_doc()
    del document["name"]
    assert _fields(document) == ["name"]


@pytest.mark.parametrize("name", ["acme\n", "Acme-1\n"])
def test_name_with_trailing_newline_is_invalid(
    make_surface_doc: SurfaceDocumentFactory, name: str
) -> None:
    assert _fields(make_surface_doc(name=name)) == ["name"]


@pytest.mark.parametrize("credential_id", ["", 7, ["cred"], False])
def test_invalid_credential_id(
    make_surface_doc: SurfaceDocumentFactory, credential_id: object
) -> None:
    assert _errors(make_surface_doc(credential_id=credential_id)) == [
        FieldError("credential_id", "is required")
    ]


def test_missing_credential_id(make_surface_doc: SurfaceDocumentFactory) -> None:
    document = make_surface_doc()
    del document["credential_id"]
    assert _errors(document) == [FieldError("credential_id", "is required")]


# --- fallbacks -------------------------------------------------------------------------------


def test_fallbacks_keep_their_order(make_surface_doc: SurfaceDocumentFactory) -> None:
    surface = parse_surface(make_surface_doc(fallback_credential_ids=["cred-c", "cred-b"]))
    assert surface.fallback_credential_ids == ("cred-c", "cred-b")


@pytest.mark.parametrize(
    ("fallbacks", "message"),
    [
        (["cred-b", "cred-b"], "lists a credential twice"),
        (["cred-primary"], "must not repeat the primary credential"),
        (["cred-b", "cred-primary"], "must not repeat the primary credential"),
        ("cred-b", "must be a list of credential ids"),
        (["cred-b", 3], "must be a list of credential ids"),
        ({"cred-b": 1}, "must be a list of credential ids"),
    ],
)
def test_invalid_fallbacks(
    make_surface_doc: SurfaceDocumentFactory, fallbacks: object, message: str
) -> None:
    assert _errors(make_surface_doc(fallback_credential_ids=fallbacks)) == [
        FieldError("fallback_credential_ids", message)
    ]


# --- sender ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        "+15550001111",
        "+33612345678",
        "+447946000000",
        "123",
        "12345",
        "12345678",
        "A",
        "ACME",
        "Acme Corp",
        "ACME2024",
        "A1234567890",
        "1234567890Z",
    ],
)
def test_valid_senders(make_surface_doc: SurfaceDocumentFactory, sender: str) -> None:
    assert check_sender(sender) is None
    assert parse_surface(make_surface_doc(sender=sender)).sender == sender


def test_sender_is_trimmed(make_surface_doc: SurfaceDocumentFactory) -> None:
    assert parse_surface(make_surface_doc(sender="  +15550001111 ")).sender == "+15550001111"


@pytest.mark.parametrize(
    ("sender", "problem"),
    [
        ("+1 555 000 1111", "write the number in E.164 form, e.g. +15550001111"),
        ("+1-555-000-1111", "write the number in E.164 form, e.g. +15550001111"),
        ("+1555000111", "not a possible phone number"),
        ("+abc", "not a valid E.164 number"),
        ("+999123456", "not a valid E.164 number"),
        ("12", GENERIC_SENDER_PROBLEM),
        ("123456789", GENERIC_SENDER_PROBLEM),
        ("12345678901", GENERIC_SENDER_PROBLEM),
        ("ACMECORPSMS1", GENERIC_SENDER_PROBLEM),
        ("ACME-SMS", GENERIC_SENDER_PROBLEM),
        ("ÄCME", GENERIC_SENDER_PROBLEM),
        ("15550001111", GENERIC_SENDER_PROBLEM),
    ],
)
def test_invalid_senders(
    make_surface_doc: SurfaceDocumentFactory, sender: str, problem: str
) -> None:
    assert check_sender(sender) == problem
    assert _errors(make_surface_doc(sender=sender)) == [FieldError("sender", problem)]


@pytest.mark.parametrize("sender", ["", "   ", 15550001111, ["ACME"]])
def test_sender_is_required(make_surface_doc: SurfaceDocumentFactory, sender: object) -> None:
    assert _errors(make_surface_doc(sender=sender)) == [FieldError("sender", "is required")]


@pytest.mark.parametrize("sender", ["12345\n", "ACME\n"])
def test_check_sender_rejects_trailing_newline(sender: str) -> None:
    assert check_sender(sender) == GENERIC_SENDER_PROBLEM


# --- message type ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("marketing", MessageType.MARKETING), ("transactional", MessageType.TRANSACTIONAL)],
)
def test_message_types(
    make_surface_doc: SurfaceDocumentFactory, value: str, expected: MessageType
) -> None:
    assert parse_surface(make_surface_doc(message_type=value)).message_type is expected


@pytest.mark.parametrize("value", ["MARKETING", "promo", "", 1, ["marketing"]])
def test_invalid_message_type(make_surface_doc: SurfaceDocumentFactory, value: object) -> None:
    assert _errors(make_surface_doc(message_type=value)) == [
        FieldError("message_type", "must be marketing or transactional")
    ]


# --- link tracking ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link_tracking", "expected"),
    [
        ({}, LinkTracking(False, None)),
        ({"enabled": True}, LinkTracking(True, None)),
        (
            {"enabled": True, "base_url": "https://l.example.com/"},
            LinkTracking(True, "https://l.example.com"),
        ),
        ({"base_url": "https://l.example.com/t/"}, LinkTracking(False, "https://l.example.com/t")),
        ({"base_url": "https://l.example.com//"}, LinkTracking(False, "https://l.example.com")),
        (
            {"base_url": "http://l.example.com:8080/t"},
            LinkTracking(False, "http://l.example.com:8080/t"),
        ),
        ({"enabled": False, "base_url": None}, LinkTracking(False, None)),
    ],
)
def test_link_tracking(
    make_surface_doc: SurfaceDocumentFactory, link_tracking: dict[str, Any], expected: LinkTracking
) -> None:
    assert parse_surface(make_surface_doc(link_tracking=link_tracking)).link_tracking == expected


@pytest.mark.parametrize(
    "base_url",
    [
        "ftp://l.example.com",
        "l.example.com",
        "/t",
        "https://",
        "https:///path",
        "https://l.example.com/?a=1",
        "https://l.example.com/t?utm=x",
        "https://l.example.com#frag",
        "javascript:alert(1)",
        "",
        42,
    ],
)
def test_invalid_link_tracking_base_url(
    make_surface_doc: SurfaceDocumentFactory, base_url: object
) -> None:
    document = make_surface_doc(link_tracking={"enabled": True, "base_url": base_url})
    assert _errors(document) == [
        FieldError("link_tracking.base_url", "must be an absolute http(s) URL")
    ]


@pytest.mark.parametrize("base_url", ["https://l.example.com/?", "https://l.example.com/#"])
def test_base_url_with_empty_query_or_fragment_is_invalid(
    make_surface_doc: SurfaceDocumentFactory, base_url: str
) -> None:
    assert _fields(make_surface_doc(link_tracking={"base_url": base_url})) == [
        "link_tracking.base_url"
    ]


def test_base_url_with_broken_ipv6_host_is_a_field_error(
    make_surface_doc: SurfaceDocumentFactory,
) -> None:
    assert _fields(make_surface_doc(link_tracking={"base_url": "http://[::1"})) == [
        "link_tracking.base_url"
    ]


@pytest.mark.parametrize("enabled", ["yes", 1, "true", None])
def test_link_tracking_enabled_must_be_boolean(
    make_surface_doc: SurfaceDocumentFactory, enabled: object
) -> None:
    document = make_surface_doc(link_tracking={"enabled": enabled})
    assert _errors(document) == [FieldError("link_tracking.enabled", "must be true or false")]


@pytest.mark.parametrize("link_tracking", ["on", True, ["https://l.example.com"]])
def test_link_tracking_must_be_an_object(
    make_surface_doc: SurfaceDocumentFactory, link_tracking: object
) -> None:
    assert _errors(make_surface_doc(link_tracking=link_tracking)) == [
        FieldError("link_tracking", "must be an object")
    ]


# --- keywords --------------------------------------------------------------------------------


def test_keywords_are_trimmed_upper_cased_and_deduplicated(
    make_surface_doc: SurfaceDocumentFactory,
) -> None:
    surface = parse_surface(
        make_surface_doc(keywords={"opt_out": [" stop ", "Arret", "STOP", "arrêt"]})
    )
    assert surface.keywords["opt_out"] == ("STOP", "ARRET", "ARRÊT")
    assert surface.keywords["opt_in"] == EXPECTED_DEFAULT_KEYWORDS["opt_in"]
    assert surface.keywords["help"] == EXPECTED_DEFAULT_KEYWORDS["help"]


def test_keywords_replace_every_given_category(make_surface_doc: SurfaceDocumentFactory) -> None:
    keywords = {"opt_out": ["quit"], "opt_in": ["go"], "help": ["aide"]}
    surface = parse_surface(make_surface_doc(keywords=keywords))
    assert dict(surface.keywords) == {"opt_out": ("QUIT",), "opt_in": ("GO",), "help": ("AIDE",)}


@pytest.mark.parametrize(
    ("keywords", "field"),
    [
        ({"promo": ["DEALS"]}, "keywords.promo"),
        ({"OPT_OUT": ["STOP"]}, "keywords.OPT_OUT"),
        ({"opt_in": "START"}, "keywords.opt_in"),
        ({"opt_in": None}, "keywords.opt_in"),
        ({"opt_in": ["START", 5]}, "keywords.opt_in"),
        ({"opt_in": [""]}, "keywords.opt_in"),
        ({"opt_in": ["START", "   "]}, "keywords.opt_in"),
        ({"help": ("HELP",)}, "keywords.help"),
    ],
)
def test_invalid_keywords(
    make_surface_doc: SurfaceDocumentFactory, keywords: dict[str, Any], field: str
) -> None:
    assert _fields(make_surface_doc(keywords=keywords)) == [field]


@pytest.mark.parametrize("keywords", [["STOP"], "STOP", 1])
def test_keywords_must_be_an_object(
    make_surface_doc: SurfaceDocumentFactory, keywords: object
) -> None:
    assert _fields(make_surface_doc(keywords=keywords)) == ["keywords"]


def test_same_word_in_two_categories(make_surface_doc: SurfaceDocumentFactory) -> None:
    keywords = {"opt_out": ["STOP", "END"], "opt_in": ["start", " stop"]}
    assert _errors(make_surface_doc(keywords=keywords)) == [
        FieldError("keywords.opt_in", "STOP is also in opt_out")
    ]


def test_every_category_with_a_shared_word_is_reported(
    make_surface_doc: SurfaceDocumentFactory,
) -> None:
    keywords = {"opt_out": ["STOP"], "opt_in": ["STOP"], "help": ["stop"]}
    assert _fields(make_surface_doc(keywords=keywords)) == ["keywords.opt_in", "keywords.help"]


@pytest.mark.parametrize(
    ("keywords", "field"),
    [({"opt_in": ["STOP"]}, "keywords.opt_in"), ({"help": ["start"]}, "keywords.help")],
)
def test_word_also_in_a_default_category_is_rejected(
    make_surface_doc: SurfaceDocumentFactory, keywords: dict[str, Any], field: str
) -> None:
    assert _fields(make_surface_doc(keywords=keywords)) == [field]


# --- replies ---------------------------------------------------------------------------------


def test_reply_override_keeps_other_defaults(make_surface_doc: SurfaceDocumentFactory) -> None:
    default = parse_surface(make_surface_doc())
    surface = parse_surface(make_surface_doc(replies={"help": "Call 555-0100."}))
    assert surface.replies["help"] == "Call 555-0100."
    assert surface.replies["opt_out"] == default.replies["opt_out"]
    assert surface.replies["opt_in"] == default.replies["opt_in"]


def test_reply_of_1600_characters_is_accepted(make_surface_doc: SurfaceDocumentFactory) -> None:
    surface = parse_surface(make_surface_doc(replies={"opt_out": "x" * 1600}))
    assert surface.replies["opt_out"] == "x" * 1600


@pytest.mark.parametrize(
    ("replies", "error"),
    [
        (
            {"opt_out": "x" * 1601},
            FieldError("replies.opt_out", "must be text of at most 1600 characters"),
        ),
        ({"help": 5}, FieldError("replies.help", "must be text of at most 1600 characters")),
        ({"help": None}, FieldError("replies.help", "must be text of at most 1600 characters")),
        (
            {"promo": "Deals!"},
            FieldError(
                "replies.promo", "unknown category; use opt_out, opt_in, help or confirm_opt_in"
            ),
        ),
        ("Reply STOP", FieldError("replies", "must be an object")),
        (["Reply STOP"], FieldError("replies", "must be an object")),
    ],
)
def test_invalid_replies(
    make_surface_doc: SurfaceDocumentFactory, replies: object, error: FieldError
) -> None:
    assert _errors(make_surface_doc(replies=replies)) == [error]


# --- document round trip ---------------------------------------------------------------------


def test_full_document_round_trips(make_surface_doc: SurfaceDocumentFactory) -> None:
    document = make_surface_doc(
        sender="+15550001111",
        message_type="marketing",
        fallback_credential_ids=["cred-b", "cred-c"],
        link_tracking={
            "enabled": True,
            "base_url": "https://l.example.com/r",
            "expire_after_days": 90,
        },
        keywords={"opt_out": ["STOP", "ARRET"], "opt_in": ["START"], "help": ["HELP"]},
        replies={
            "opt_out": "Bye.",
            "opt_in": "Welcome back.",
            "help": "Call us.",
            "confirm_opt_in": "Sure?",
        },
        double_opt_in=True,
        quiet_hours={"start": "21:00", "end": "08:00", "default_timezone": "Europe/Paris"},
        frequency_cap={"max_messages": 3, "window_hours": 24},
    )
    surface = parse_surface(document)
    assert surface.document() == {
        "name": "acme-alerts",
        "credential_id": "cred-primary",
        "fallback_credential_ids": ["cred-b", "cred-c"],
        "sender": "+15550001111",
        "message_type": "marketing",
        "link_tracking": {
            "enabled": True,
            "base_url": "https://l.example.com/r",
            "expire_after_days": 90,
        },
        "keywords": {"opt_out": ["STOP", "ARRET"], "opt_in": ["START"], "help": ["HELP"]},
        "replies": {
            "opt_out": "Bye.",
            "opt_in": "Welcome back.",
            "help": "Call us.",
            "confirm_opt_in": "Sure?",
        },
        "double_opt_in": True,
        "quiet_hours": {"start": "21:00", "end": "08:00", "default_timezone": "Europe/Paris"},
        "frequency_cap": {"max_messages": 3, "window_hours": 24.0},
    }
    assert parse_surface(surface.document()) == surface


def test_default_surface_round_trips() -> None:
    surface = Surface(
        name="plain", credential_id="cred-1", sender="12345", message_type=MessageType.MARKETING
    )
    assert parse_surface(surface.document()) == surface


_words = st.from_regex(r"[A-Z]{2,8}", fullmatch=True)


@st.composite
def _surface_documents(draw: st.DrawFn) -> dict[str, Any]:
    words = draw(st.lists(_words, min_size=3, max_size=12, unique=True))
    cut_a = draw(st.integers(1, len(words) - 2))
    cut_b = draw(st.integers(cut_a + 1, len(words) - 1))
    fallbacks = draw(st.lists(st.from_regex(r"fb-[a-z0-9]{1,6}", fullmatch=True), unique=True))
    return {
        "name": draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,40}", fullmatch=True)),
        "credential_id": "primary",
        "fallback_credential_ids": fallbacks,
        "sender": draw(
            st.one_of(
                st.from_regex(r"[0-9]{3,8}", fullmatch=True),
                st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,10}", fullmatch=True),
                st.sampled_from(["+15550001111", "+33612345678"]),
            )
        ),
        "message_type": draw(st.sampled_from(["marketing", "transactional"])),
        "link_tracking": {
            "enabled": draw(st.booleans()),
            "base_url": draw(st.sampled_from([None, "https://l.example.com", "http://t.co/x"])),
        },
        "keywords": {
            "opt_out": words[:cut_a],
            "opt_in": words[cut_a:cut_b],
            "help": words[cut_b:],
        },
        "replies": {"help": draw(st.text(max_size=200))},
    }


@given(_surface_documents())
def test_documents_round_trip(document: dict[str, Any]) -> None:
    surface = parse_surface(document)
    again = parse_surface(surface.document())
    assert again == surface
    assert again.document() == surface.document()
