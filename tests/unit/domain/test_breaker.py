"""The circuit breaker's state machine, driven by hand-set times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smsbridge.domain.breaker import BreakerState, CircuitBreaker, CircuitBreakers

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
COOLDOWN = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def opened(threshold: int = 3) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold=threshold, cooldown=COOLDOWN)
    for _ in range(threshold):
        breaker.failed(T0)
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_closed_lets_everything_through_until_n_failures_in_a_row() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=COOLDOWN)
    breaker.failed(at(0))
    breaker.failed(at(1))
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow(at(1))
    breaker.failed(at(2))
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow(at(2))


def test_an_answer_between_failures_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=COOLDOWN)
    for _ in range(5):
        breaker.failed(T0)
        breaker.failed(T0)
        breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow(T0)


def test_open_refuses_until_the_cooldown_then_lets_exactly_one_probe_through() -> None:
    breaker = opened()
    assert not breaker.allow(at(29.999))
    assert breaker.allow(at(30))
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(at(30))
    assert not breaker.allow(at(45))


def test_a_successful_probe_closes_the_breaker() -> None:
    breaker = opened()
    assert breaker.allow(at(31))
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow(at(31)) for _ in range(10))
    breaker.failed(at(32))  # counting starts again from zero
    breaker.failed(at(32))
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_probe_opens_it_again_for_a_full_cooldown() -> None:
    breaker = opened()
    assert breaker.allow(at(30))
    breaker.failed(at(31))
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow(at(60))  # 29 s after the probe failed
    assert breaker.allow(at(61))
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_probe_that_never_reports_frees_the_slot_after_a_cooldown() -> None:
    breaker = opened()
    assert breaker.allow(at(30))
    assert not breaker.allow(at(59))
    assert breaker.allow(at(60))
    assert not breaker.allow(at(60))


def test_failures_reported_while_open_do_not_extend_the_cooldown() -> None:
    breaker = opened()
    breaker.failed(at(20))  # a request sent before it opened
    assert breaker.allow(at(30))


def test_the_board_keeps_one_breaker_per_credential() -> None:
    board = CircuitBreakers(threshold=2, cooldown=COOLDOWN)
    assert board.allow("cred_unknown", T0)
    board.failed("cred_a", T0)
    board.failed("cred_a", T0)
    board.failed("cred_b", T0)
    assert board.state("cred_a") is BreakerState.OPEN
    assert board.state("cred_b") is BreakerState.CLOSED
    assert not board.allow("cred_a", at(1))
    assert board.allow("cred_b", at(1))
    assert board.allow("cred_a", at(30))
    assert board.state("cred_a") is BreakerState.HALF_OPEN
    board.succeeded("cred_a")
    assert board.state("cred_a") is BreakerState.CLOSED
    assert board.allow("cred_a", at(30))


def test_a_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CircuitBreakers(threshold=0)
