"""RetryPolicy.decide / backoff and parse_retry_after: pure decisions, reproducible delays."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsbridge.domain.retry import (
    Decision,
    Outcome,
    OutcomeKind,
    RetryPolicy,
    Verdict,
    parse_retry_after,
)

NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=5, base_delay=2.0, max_delay=60.0, max_retry_after=600.0)


def _decide(
    outcome: Outcome,
    *,
    attempt: int = 1,
    retry_ambiguous: bool = True,
    policy: RetryPolicy = POLICY,
    seed: int = 0,
) -> Decision:
    return policy.decide(
        outcome, attempt=attempt, retry_ambiguous=retry_ambiguous, rng=random.Random(seed)
    )


def _rejected(status: int, retry_after: float | None = None) -> Outcome:
    return Outcome(
        OutcomeKind.REJECTED, status=status, retry_after=retry_after, reason=f"HTTP {status}"
    )


# --- decide: verdicts ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
@pytest.mark.parametrize("attempt", [1, 3, 5, 9])
def test_accepted_is_sent_at_any_attempt(status: int, attempt: int) -> None:
    outcome = Outcome(OutcomeKind.ACCEPTED, status=status)
    assert _decide(outcome, attempt=attempt) == Decision(Verdict.SENT)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@pytest.mark.parametrize("attempt", [1, 2, 5, 6])
def test_client_errors_fail_at_once_with_the_reason(status: int, attempt: int) -> None:
    decision = _decide(_rejected(status), attempt=attempt)
    assert decision == Decision(Verdict.FAIL, reason=f"HTTP {status}")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(status: int) -> None:
    decision = _decide(_rejected(status), attempt=2)
    assert decision.verdict is Verdict.RETRY
    assert decision.reason == f"HTTP {status}"
    assert 0.0 <= decision.delay <= 4.0


def test_unreachable_is_retried() -> None:
    outcome = Outcome(OutcomeKind.UNREACHABLE, reason="connection refused")
    decision = _decide(outcome, attempt=1)
    assert decision.verdict is Verdict.RETRY
    assert decision.reason == "connection refused"
    assert 0.0 <= decision.delay <= 2.0


def test_ambiguous_is_retried_when_allowed() -> None:
    outcome = Outcome(OutcomeKind.AMBIGUOUS, reason="read timeout")
    decision = _decide(outcome, retry_ambiguous=True)
    assert decision.verdict is Verdict.RETRY
    assert decision.reason == "read timeout"


@pytest.mark.parametrize("attempt", [1, 5])
def test_ambiguous_fails_when_not_allowed_and_says_why(attempt: int) -> None:
    outcome = Outcome(OutcomeKind.AMBIGUOUS, reason="read timeout")
    decision = _decide(outcome, attempt=attempt, retry_ambiguous=False)
    assert decision.verdict is Verdict.FAIL
    assert decision.reason.startswith("read timeout")
    assert "retry_ambiguous" in decision.reason


@pytest.mark.parametrize("retry_ambiguous", [True, False])
def test_blocked_fails_at_once(retry_ambiguous: bool) -> None:
    outcome = Outcome(OutcomeKind.BLOCKED, reason="resolves to 127.0.0.1")
    decision = _decide(outcome, attempt=1, retry_ambiguous=retry_ambiguous)
    assert decision == Decision(Verdict.FAIL, reason="resolves to 127.0.0.1")


# --- decide: 429 and Retry-After -------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [(0.0, 0.0), (1.5, 1.5), (120.0, 120.0), (600.0, 600.0), (601.0, 600.0), (1e9, 600.0)],
)
def test_too_many_requests_waits_the_retry_after_capped(retry_after: float, delay: float) -> None:
    decision = _decide(_rejected(429, retry_after=retry_after), attempt=1)
    assert decision == Decision(Verdict.RETRY, delay=delay, reason="HTTP 429")


def test_retry_after_beyond_max_delay_is_still_honoured() -> None:
    # The provider's explicit wait wins over the backoff ceiling (max_delay=60).
    decision = _decide(_rejected(429, retry_after=300.0), attempt=1)
    assert decision.delay == 300.0


def test_negative_retry_after_means_no_wait() -> None:
    assert _decide(_rejected(429, retry_after=-5.0)).delay == 0.0


def test_too_many_requests_without_retry_after_backs_off() -> None:
    attempt, seed = 3, 42
    decision = _decide(_rejected(429), attempt=attempt, seed=seed)
    assert decision.verdict is Verdict.RETRY
    assert decision.delay == POLICY.backoff(attempt, random.Random(seed))
    assert 0.0 <= decision.delay <= 8.0


def test_retry_after_is_ignored_for_server_errors() -> None:
    decision = _decide(_rejected(503, retry_after=500.0), attempt=1)
    assert decision.verdict is Verdict.RETRY
    assert decision.delay <= 2.0


# --- decide: giving up -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome",
    [
        _rejected(500),
        _rejected(503),
        _rejected(429),
        _rejected(429, retry_after=10.0),
        Outcome(OutcomeKind.UNREACHABLE, reason="dns failure"),
        Outcome(OutcomeKind.AMBIGUOUS, reason="read timeout"),
    ],
)
def test_transient_outcomes_give_up_at_max_attempts(outcome: Outcome) -> None:
    assert _decide(outcome, attempt=POLICY.max_attempts - 1).verdict is Verdict.RETRY
    decision = _decide(outcome, attempt=POLICY.max_attempts)
    assert decision.verdict is Verdict.FAIL
    assert decision.delay == 0.0
    assert decision.reason.startswith(outcome.reason)
    assert f"gave up after {POLICY.max_attempts} attempts" in decision.reason


def test_past_max_attempts_still_gives_up() -> None:
    decision = _decide(_rejected(500), attempt=POLICY.max_attempts + 3)
    assert decision.verdict is Verdict.FAIL
    assert f"gave up after {POLICY.max_attempts + 3} attempts" in decision.reason


def test_single_attempt_policy_never_retries() -> None:
    policy = RetryPolicy(max_attempts=1)
    decision = _decide(_rejected(502), attempt=1, policy=policy)
    assert decision.verdict is Verdict.FAIL
    assert "gave up after 1 attempts" in decision.reason


def test_default_policy_retries_up_to_eight_attempts() -> None:
    policy = RetryPolicy()
    verdicts = [_decide(_rejected(500), attempt=n, policy=policy).verdict for n in range(1, 9)]
    assert verdicts == [Verdict.RETRY] * 7 + [Verdict.FAIL]


# --- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (6, 60.0), (7, 60.0), (20, 60.0)],
)
def test_backoff_stays_within_full_jitter_bounds(attempt: int, ceiling: float) -> None:
    rng = random.Random(1234)
    delays = [POLICY.backoff(attempt, rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # Full jitter spreads over the whole range, not just its top or bottom.
    assert min(delays) < ceiling * 0.05
    assert max(delays) > ceiling * 0.95


def test_backoff_is_reproducible_for_a_seed() -> None:
    first = [POLICY.backoff(n, random.Random(7)) for n in range(1, 8)]
    second = [POLICY.backoff(n, random.Random(7)) for n in range(1, 8)]
    assert first == second


def test_backoff_differs_between_seeds() -> None:
    delays = {POLICY.backoff(4, random.Random(seed)) for seed in range(20)}
    assert len(delays) == 20


def test_server_error_delays_differ_between_seeds() -> None:
    delays = {_decide(_rejected(503), attempt=3, seed=seed).delay for seed in range(20)}
    assert len(delays) == 20
    assert all(0.0 <= d <= 8.0 for d in delays)


@given(
    attempt=st.integers(1, 64),
    base=st.floats(0.01, 10.0),
    cap=st.floats(0.01, 1000.0),
    seed=st.integers(0, 2**32),
)
def test_backoff_never_exceeds_its_ceiling(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap)
    delay = policy.backoff(attempt, random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_backoff_for_a_very_late_attempt_is_capped() -> None:
    assert 0.0 <= POLICY.backoff(1100, random.Random(0)) <= POLICY.max_delay


# --- parse_retry_after -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("86400", 86400.0),
        ("Fri, 01 Mar 2024 12:02:00 GMT", 120.0),
        ("Fri, 01 Mar 2024 13:00:00 GMT", 3600.0),
        ("Fri, 01 Mar 2024 12:00:00 GMT", 0.0),
        ("Fri, 01 Mar 2024 11:59:00 GMT", 0.0),
        ("Thu, 01 Jan 2015 00:00:00 GMT", 0.0),
        ("Fri, 01 Mar 2024 14:00:30 +0200", 30.0),
    ],
)
def test_parse_retry_after(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [None, "", "soon", "-5", "1.5", "12abc", "Fri, 32 Foo 2024 99:00:00 GMT", "Fri, 01 Mar 2024"],
)
def test_unusable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_http_date_is_measured_from_the_given_now() -> None:
    header = "Fri, 01 Mar 2024 12:10:00 GMT"
    assert parse_retry_after(header, NOW) == 600.0
    assert parse_retry_after(header, NOW + timedelta(minutes=5)) == 300.0
    assert parse_retry_after(header, NOW + timedelta(minutes=15)) == 0.0


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=40))
def test_parse_retry_after_never_raises_on_ascii(value: str) -> None:
    result = parse_retry_after(value, NOW)
    assert result is None or result >= 0.0


# str.isdigit() also accepts superscript and other non-ASCII digits, some of which float()
# rejects; a header made of them is garbage, not a crash.
@pytest.mark.parametrize(
    "value",
    [
        "\u00b2",  # superscript two
        "\u00b9\u00b2\u2070",  # superscript 120
        "\u0661\u0662\u0660",  # Arabic-Indic 120
        "\uff11\uff12\uff10",  # fullwidth 120
        "\U0001d7cf\U0001d7d0\U0001d7ce",  # mathematical bold 120
    ],
)
def test_non_ascii_digits_are_garbage(value: str) -> None:
    assert parse_retry_after(value, NOW) is None


# --- transient failures and a spent budget (what failover and the breakers act on) ------------


@pytest.mark.parametrize(
    ("outcome", "transient"),
    [
        (Outcome(OutcomeKind.UNREACHABLE, reason="refused"), True),
        (Outcome(OutcomeKind.AMBIGUOUS, reason="timeout"), True),
        (_rejected(500), True),
        (_rejected(503), True),
        (_rejected(429), True),
        (Outcome(OutcomeKind.REJECTED, reason="no status"), True),
        (_rejected(400), False),
        (_rejected(401), False),
        (_rejected(422), False),
        (Outcome(OutcomeKind.ACCEPTED, status=200), False),
        (Outcome(OutcomeKind.BLOCKED, reason="private address"), False),
    ],
)
def test_which_outcomes_are_transient(outcome: Outcome, transient: bool) -> None:
    assert outcome.transient is transient


def test_only_a_budget_spent_on_transient_failures_is_exhausted() -> None:
    last = POLICY.max_attempts
    assert _decide(_rejected(503), attempt=last).exhausted
    assert _decide(Outcome(OutcomeKind.UNREACHABLE, reason="x"), attempt=last).exhausted
    assert not _decide(_rejected(503), attempt=last - 1).exhausted
    assert not _decide(_rejected(400), attempt=last).exhausted
    assert not _decide(
        Outcome(OutcomeKind.AMBIGUOUS, reason="timeout"), attempt=1, retry_ambiguous=False
    ).exhausted
    assert not _decide(Outcome(OutcomeKind.BLOCKED, reason="private"), attempt=last).exhausted
