"""The adaptive send limit, driven by hand-made answers and times (no clock, no I/O)."""

from __future__ import annotations

import pytest

from smsbridge.delivery.adaptive import (
    MIN_WINDOW,
    SLOW_START_FACTOR,
    AdaptiveLimit,
    Change,
    ChangeLog,
    Reason,
)


class Sends:
    """Answers fed to one limiter on a simulated clock: each :meth:`round` is one window's
    worth of sends, all started together and answered ``latency`` seconds later."""

    def __init__(self, limiter: AdaptiveLimit, t: float = 0.0) -> None:
        self.limiter = limiter
        self.t = t
        self.changes: list[Change] = []

    def round(
        self, latency: float, *, in_flight: int | None = None, rate_held: bool = False
    ) -> Change | None:
        limiter = self.limiter
        started, self.t = self.t, self.t + latency
        change = None
        for _ in range(max(MIN_WINDOW, limiter.limit // 2)):
            busy = limiter.limit if in_flight is None else in_flight
            got = limiter.answered(
                latency, started=started, in_flight=busy, rate_held=rate_held, now=self.t
            )
            if got is not None:
                change = got
                self.changes.append(got)
        self.t += 0.001
        return change

    def overloads(self, count: int, signal: str = "429") -> Change | None:
        """``count`` sends started now pushed back at once; the last change they made."""
        change = None
        for _ in range(count):  # started a moment ago: those after a cut were sent before it
            got = self.limiter.overloaded(signal, started=self.t - 0.0005, now=self.t)
            if got is not None:
                change = got
                self.changes.append(got)
        self.t += 0.001
        return change


def steady_stream(limit: AdaptiveLimit, *, rate: int, seconds: float, latency: float) -> float:
    """Answers at ``rate`` a second for ``seconds``, never filling the limit (no growth);
    returns the time of the last one."""
    t = 0.0
    for n in range(1, int(rate * seconds) + 1):
        t = n / rate
        limit.answered(latency, started=t - latency, in_flight=1, rate_held=False, now=t)
    return t


def limiter(initial: int = 64, cap: int = 2000) -> AdaptiveLimit:
    return AdaptiveLimit(initial=initial, cap=cap, now=0.0)


def test_clean_latency_bound_answers_multiply_the_limit_per_window() -> None:
    sends = Sends(limiter())
    seen = [sends.limiter.limit]
    for _ in range(2):
        sends.round(0.2)
        seen.append(sends.limiter.limit)
    assert seen == [64, 64 * SLOW_START_FACTOR, 64 * SLOW_START_FACTOR**2]
    assert all(c.reason is Reason.SLOW_START for c in sends.changes)


def test_growth_stops_at_the_cap() -> None:
    sends = Sends(limiter(cap=300))
    for _ in range(20):
        sends.round(0.2)
        assert sends.limiter.limit <= 300
    assert sends.limiter.limit == 300


def test_no_growth_when_the_limit_is_not_what_holds_sends_back() -> None:
    sends = Sends(limiter())
    for _ in range(5):
        assert sends.round(0.2, in_flight=10) is None  # a trickle of messages
    assert sends.limiter.limit == 64


def test_no_growth_while_sends_wait_for_the_credential_rate_limit() -> None:
    sends = Sends(limiter())
    for _ in range(5):
        assert sends.round(0.2, rate_held=True) is None
    assert sends.limiter.limit == 64


def test_answers_to_sends_started_before_a_change_are_not_counted() -> None:
    limit = limiter()
    sends = Sends(limit)
    sends.round(0.2)
    assert limit.limit == 256
    for _ in range(500):  # old sends answering late say nothing about the new limit
        assert limit.answered(0.2, started=0.0, in_flight=256, rate_held=False, now=1.0) is None
    assert limit.limit == 256


@pytest.mark.parametrize("signal", ["429", "503", "timeout", "no connection"])
def test_push_back_cuts_the_limit_multiplicatively(signal: str) -> None:
    sends = Sends(limiter())
    for _ in range(2):
        sends.round(0.2)
    before = sends.limiter.limit
    change = sends.overloads(10, signal)  # 10 of ~170 answers in the last second: over 2 %
    assert change is not None
    assert change.reason is Reason.OVERLOAD
    assert change.signal == signal
    assert before * 0.5 <= sends.limiter.limit <= before * 0.9
    assert signal in change.describe()


def test_a_rare_push_back_is_tolerated() -> None:
    limit = limiter()
    t = steady_stream(limit, rate=500, seconds=1.0, latency=0.2)
    for n in range(5):  # 1 % of the answers
        assert limit.overloaded("503", started=t, now=t + n * 0.2) is None
    assert limit.limit == 64


def test_one_cut_per_window() -> None:
    sends = Sends(limiter())
    for _ in range(2):
        sends.round(0.2)
    before_cut = sends.t - 0.01
    sends.overloads(10)
    after_cut = sends.limiter.limit
    for _ in range(50):  # the sends that were out already
        assert sends.limiter.overloaded("429", started=before_cut, now=sends.t) is None
    sends.overloads(after_cut // 2 - 1)  # the window after the cut, not yet full
    assert sends.limiter.limit == after_cut
    change = sends.overloads(1)  # full, and still pushing back: cut again
    assert change is not None
    assert sends.limiter.limit < after_cut


def test_push_back_cuts_to_what_carried_the_providers_rate() -> None:
    sends = Sends(limiter(initial=32))
    sends.round(0.2)
    assert sends.limiter.limit == 128
    limit = sends.limiter
    t = steady_stream(limit, rate=500, seconds=1.2, latency=0.2)  # what the provider takes
    change = limit.overloaded("429", started=t, now=t)
    assert change is None  # one alone is tolerated
    change = limit.overloaded("429", started=t, now=t)
    for n in range(10):
        change = change or limit.overloaded("429", started=t, now=t + n * 0.001)
    assert change is not None
    assert 495 <= change.rate <= 501
    assert 99 <= limit.limit <= 100  # 500/s x 0.2 s: what the provider takes, no less


def test_growth_after_push_back_is_one_by_one_past_the_carried_level() -> None:
    sends = Sends(limiter(initial=32))
    sends.round(0.2)
    limit = sends.limiter
    t = steady_stream(limit, rate=500, seconds=1.2, latency=0.2)
    for n in range(12):
        limit.overloaded("429", started=t, now=t + n * 0.001)
    assert 99 <= limit.limit <= 100
    sends.t = t + 0.1
    steps = []
    for _ in range(5):
        before = limit.limit
        sends.round(0.2)
        steps.append(limit.limit - before)
    assert steps == [1, 1, 1, 1, 1]


def test_a_minority_pushing_back_never_takes_the_limit_below_the_starting_value() -> None:
    sends = Sends(limiter(initial=64))
    for _ in range(3):
        sends.round(0.2)
    for _ in range(20):  # a provider failing a third of requests whatever the load
        sends.round(0.2, in_flight=1)
        sends.overloads(sends.limiter.limit // 4)
    assert sends.limiter.limit == 64


def test_most_answers_pushing_back_take_the_limit_down_to_one_never_below() -> None:
    sends = Sends(limiter(initial=64))
    for _ in range(40):
        sends.overloads(max(MIN_WINDOW, sends.limiter.limit // 2), "503")
        assert sends.limiter.limit >= 1
    assert sends.limiter.limit == 1
    assert sends.overloads(MIN_WINDOW, "503") is None  # nothing left to cut


def test_below_the_starting_value_clean_windows_bring_it_back_whatever_the_latency() -> None:
    sends = Sends(limiter(initial=64))
    sends.round(0.2)
    for _ in range(6):
        sends.overloads(max(MIN_WINDOW, sends.limiter.limit // 2), "timeout")
    low = sends.limiter.limit
    assert low < 64
    sends.round(0.9)  # slow answers, but answers: it grows, cautiously at first
    assert sends.limiter.limit > low
    sends.t += 31  # past the memory of the push-back: doubling back
    before = sends.limiter.limit
    sends.round(0.9)
    assert sends.limiter.limit == min(64, 2 * before)
    assert sends.changes[-1].reason is Reason.RECOVER
    for _ in range(10):
        sends.round(0.9)
    assert sends.limiter.limit >= 64


def test_latency_rising_for_two_windows_shrinks_to_the_knee() -> None:
    sends = Sends(limiter())
    for _ in range(2):
        sends.round(0.2)
    assert sends.limiter.limit == 1024
    assert sends.round(0.4) is None  # one slow window: a hiccup, held
    change = sends.round(0.4)  # two: queueing
    assert change is not None
    assert change.reason is Reason.LATENCY_ROSE
    assert sends.limiter.limit == pytest.approx(1024 * 1.1 / 2.0, abs=2)  # x baseline/median
    assert "latency rose" in change.describe()
    assert not sends.limiter.slow_start


def test_latency_never_pushes_the_limit_below_the_starting_value() -> None:
    sends = Sends(limiter())
    sends.round(0.01)
    for _ in range(10):
        sends.round(1.0)
    assert sends.limiter.limit == 64


def test_after_a_cut_growth_probes_instead_of_doubling() -> None:
    sends = Sends(limiter())
    for _ in range(3):
        sends.round(0.2)
    sends.round(0.5)
    sends.round(0.5)
    settled = sends.limiter.limit
    change = sends.round(0.2)
    assert change is not None
    assert change.reason is Reason.GROW
    assert settled < sends.limiter.limit < settled * 2


def test_the_starting_value_must_fit_under_the_cap() -> None:
    with pytest.raises(ValueError, match="initial"):
        AdaptiveLimit(initial=0, cap=10, now=0.0)
    with pytest.raises(ValueError, match="initial"):
        AdaptiveLimit(initial=11, cap=10, now=0.0)


# --- which changes are logged -----------------------------------------------------------------


def change(old: int, new: int) -> Change:
    return Change(old, new, Reason.SLOW_START, median=0.2, baseline=0.2)


def test_the_first_change_is_logged_at_once() -> None:
    log = ChangeLog(interval=5.0, threshold=0.25)
    assert log.changed("c", change(64, 128), now=0.0) == (64, change(64, 128))


def test_small_changes_and_changes_within_the_interval_are_held_back() -> None:
    log = ChangeLog(interval=5.0, threshold=0.25)
    log.changed("c", change(64, 128), now=0.0)
    assert log.changed("c", change(128, 140), now=10.0) is None  # under 25 %
    assert log.changed("c", change(140, 512), now=1.0) is None  # too soon
    assert log.due("c", now=2.0) is None
    assert log.due("c", now=5.0) == (128, change(140, 512))  # from the value last logged
    assert log.due("c", now=20.0) is None  # told once


def test_a_held_back_change_undone_in_the_meantime_is_never_logged() -> None:
    log = ChangeLog(interval=5.0, threshold=0.25)
    log.changed("c", change(64, 128), now=0.0)
    log.changed("c", change(128, 512), now=1.0)
    log.changed("c", change(512, 130), now=2.0)
    assert log.due("c", now=6.0) is None
    assert not log.pending


def test_credentials_are_logged_independently() -> None:
    log = ChangeLog()
    assert log.changed("a", change(64, 128), now=0.0) is not None
    assert log.changed("b", change(64, 128), now=0.1) is not None
