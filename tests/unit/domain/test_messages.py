"""check_body and the message state sets."""

from __future__ import annotations

import pytest

from smsbridge.domain.messages import (
    PENDING,
    TERMINAL,
    EventType,
    MessageStatus,
    check_body,
)
from smsbridge.errors import FieldError, InvalidInput


def _errors(body: object, **kwargs: str) -> list[FieldError]:
    with pytest.raises(InvalidInput) as caught:
        check_body(body, **kwargs)
    return caught.value.errors


@pytest.mark.parametrize(
    "body",
    ["hi", " padded ", "line\nbreak", "😀", "x" * 1600, "😀" * 1600, "ж" * 1600],
)
def test_sendable_body_is_returned_unchanged(body: str) -> None:
    assert check_body(body) == body


@pytest.mark.parametrize("body", ["", " ", "   ", "\n\t\r ", "\u3000", None, 5, b"hello", ["hi"]])
def test_empty_or_non_text_body_is_refused(body: object) -> None:
    assert _errors(body) == [FieldError("body", "must not be empty")]


@pytest.mark.parametrize(("length", "text"), [(1601, "1601"), (1602, "1602"), (5000, "5000")])
def test_overlong_body_names_field_and_length(length: int, text: str) -> None:
    assert _errors("x" * length) == [
        FieldError("body", f"is {text} characters long; the limit is 1600")
    ]


def test_errors_name_the_given_field() -> None:
    assert _errors("", field="template.body") == [FieldError("template.body", "must not be empty")]
    (error,) = _errors("y" * 1601, field="messages[2].body")
    assert error.field == "messages[2].body"
    assert "1601" in error.message


def test_invalid_input_message_names_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"^body: is 1601 characters long"):
        check_body("z" * 1601)


# --- states ----------------------------------------------------------------------------------


def test_status_values_are_stable() -> None:
    # These strings are stored in the database and returned by the API.
    assert {s.name: s.value for s in MessageStatus} == {
        "SCHEDULED": "scheduled",
        "QUEUED": "queued",
        "SENDING": "sending",
        "SENT": "sent",
        "DELIVERED": "delivered",
        "UNDELIVERED": "undelivered",
        "FAILED": "failed",
        "SUPPRESSED": "suppressed",
        "CANCELLED": "cancelled",
    }


def test_pending_states() -> None:
    assert (
        frozenset({MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING}) == PENDING
    )


def test_terminal_states() -> None:
    assert {
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.SUPPRESSED,
        MessageStatus.CANCELLED,
    } == TERMINAL


def test_every_status_is_either_pending_or_terminal() -> None:
    assert PENDING.isdisjoint(TERMINAL)
    assert set(MessageStatus) == PENDING | TERMINAL


@pytest.mark.parametrize("status", list(MessageStatus))
def test_status_round_trips_from_its_value(status: MessageStatus) -> None:
    assert MessageStatus(status.value) is status
    assert (status in PENDING) != (status in TERMINAL)


def test_event_type_values_are_stable() -> None:
    assert {e.value for e in EventType} == {
        "queued",
        "scheduled",
        "attempt",
        "sent",
        "retry_scheduled",
        "failed",
        "cancelled",
        "released",
        "suppressed",
        "delivered",
        "undelivered",
        "outcome_unknown",
        "provider_status",
    }
