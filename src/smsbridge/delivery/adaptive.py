"""How many sends to one credential a worker keeps in flight: a limit that follows the provider.

A fixed number of concurrent sends is wrong both ways: against a provider answering in 200 ms,
64 sends in flight make at most 320 messages a second while the machine idles; against one
that throttles, any number above what it accepts only buys 429s and retries. Throughput is
concurrency divided by latency (Little's law), so the limit should grow exactly while more
sends in flight still come back as fast, and fall when they do not or the provider says no.

**Why a latency gradient, not plain AIMD.** AIMD (grow until an error, cut, repeat) only
hears errors, and a saturated path rarely answers with an error first: when our own event
loop or the provider's queue is full, answers just come later. AIMD would keep growing to
the cap and sit there with every send queued behind the others — the same throughput at
several times the latency, and, once the queueing outlasts a credential's timeout, timeouts
it caused itself (and the aiohttp ceiling at that concurrency far above what it reaches).
Latency says "enough" first, so, as TCP Vegas and Netflix's gradient limiters do:

* sends are counted in **windows**, each opening when the limit changes and closing once
  half a limit's worth of sends started in it have answered (every sample was sent under
  the current limit). A window's median latency is compared with the **baseline**, the
  lowest window median of the last 30 s;
* median within 10 % of the baseline, the window's sends found the limit full (the limit,
  not a lack of messages, held them back) and did not wait for the credential's rate limit:
  the sends are **latency-bound** and more in flight means more throughput: **grow** —
  fourfold per window at first (*slow start*: a window lasts about one round trip, so from
  64 to the ~1,000 a 200 ms provider can use takes two of them instead of four doubling;
  an overshoot costs latency for two windows, not throughput, and the cut that ends it
  lands on the knee; noise up to 30 % does not stop it, only a cut does), then by √limit,
  2·√limit… per window in a row of clean windows (the knee may move up when CPU frees);
* median more than 30 % above the baseline in two windows in a row (one is a hiccup: a
  pause of the machine, not queueing): the extra sends only wait, so **shrink** to
  ``limit * 1.1 * baseline / median``, the concurrency that carries the measured throughput
  at near-baseline latency. Between 10 and 30 % the limit holds: the steady state sits at
  the knee, where throughput stopped growing.

**Multiplicative decrease when the provider pushes back.** 429s, 5xx, timeouts and
connection failures making up more than 2 % of the last second's answers cut the limit at
once (a rarer one is tolerated: at a thousand sends a second a provider's occasional 503
would otherwise cut the limit every round, as random loss starves TCP Reno — BBR v2
tolerates 2 % too). The cut goes to what carried the answers the provider gave in that
second (their rate times the latency, by Little's law; BBR sizes its window from the
delivery rate likewise), but by 10 % at least and 50 % at most (30 % before any latency is
known): a provider enforcing 500 requests a second gets about ``500 * latency`` sends in
flight, not a sawtooth between half and all of it. At most one cut per window: answers to
sends started before the cut say nothing about the cut limit (TCP likewise cuts once per
round trip); a window after a cut still pushing back cuts again. For 30 s after, growth is
cautious: halfway back to that carried level, then one send at a time past it, since a
provider's rate limit does not move by itself.

**Bounds.** The configured starting concurrency (``SMSBRIDGE_WORKER_CONCURRENCY``, the
fixed value that served before) is a floor for latency, and for push-back from a minority
of answers (under half): a provider failing some share of requests whatever the load loses
no throughput to it. When most answers push back (a provider taking far fewer than the
floor, an outage), the limit goes below it, then down to 1 if need be, any push-back past
the tolerance cutting it further; it climbs back by doubling per clean window whatever the
latency, cautiously for 30 s after a push-back. The cap
(``SMSBRIDGE_WORKER_MAX_CONCURRENCY``) bounds it from above, and a credential's
``rate_limit_per_second`` still applies on its own (sends held by it do not count as
limit-bound, so the limit does not grow against a rate limit).

Pure logic: the caller passes monotonic seconds; nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

GROW_BELOW = 1.10
"""Window median / baseline at or under which sends count as latency-bound."""
SHRINK_ABOVE = 1.30
"""Window median / baseline over which the limit shrinks by the gradient."""
OVERLOAD_TOLERANCE = 0.02
"""Share of push-back answers (of the last second's) tolerated without a cut."""
FLOOR_HOLDS_BELOW = 0.5
"""Push-back share under which cuts stop at the starting concurrency (see the docstring)."""
OVERLOAD_BACKOFF = 0.7
"""What a cut leaves of the limit before any latency is known."""
KEEP_AT_LEAST = 0.5
KEEP_AT_MOST = 0.9
"""Bounds of what a cut leaves of the limit."""
BASELINE_SECONDS = 30.0
"""How long a window median stays a candidate for the baseline."""
MIN_WINDOW = 16
"""Fewest answers a window closes on (a median of fewer is noise)."""
RATE_HELD_SHARE = 0.1
"""Share of a window's sends that waited for the rate limit past which it is rate-bound."""
PUSHBACK_MEMORY = 30.0
"""Seconds after a push-back cut during which growth stays cautious."""
SLOW_START_FACTOR = 4
"""What a clean window multiplies the limit by until the first cut."""
LATENCY_SLACK = 0.001
"""Seconds added to both sides of the ratio: sub-millisecond jitter is not queueing."""


class Reason(StrEnum):
    SLOW_START = "latency-bound"
    GROW = "latency-bound, probing"
    RECOVER = "recovering"
    LATENCY_ROSE = "latency rose"
    OVERLOAD = "provider pushed back"


@dataclass(frozen=True)
class Change:
    """One change of a limit and why."""

    old: int
    new: int
    reason: Reason
    median: float | None = None
    """The window's median latency, seconds (None for a push-back cut)."""
    baseline: float | None = None
    signal: str = ""
    """What the provider last answered, for a push-back cut: ``429``, ``503``, ``timeout``…"""
    share: float = 0.0
    """Share of the last second's answers pushing back, for a push-back cut."""
    rate: int = 0
    """Answers the provider gave in the second before a cut, push-back aside."""

    def describe(self) -> str:
        if self.reason is Reason.OVERLOAD:
            return (
                f"{self.reason}: {self.signal}, {self.share:.0%} of answers; "
                f"{self.rate:,} others in the last second"
            )
        assert self.median is not None
        assert self.baseline is not None
        p50 = f"p50 {self.median * 1000:,.0f} ms"
        if self.reason is Reason.LATENCY_ROSE:
            return f"{self.reason}: {p50} vs {self.baseline * 1000:,.0f} ms"
        return f"{self.reason}, {p50}"


class _SlidingMin:
    """The minimum of the values pushed in the last ``span`` seconds (a monotonic deque)."""

    def __init__(self, span: float) -> None:
        self._span = span
        self._items: deque[tuple[float, float]] = deque()

    def push(self, now: float, value: float) -> float:
        items = self._items
        while items and items[-1][1] >= value:
            items.pop()
        items.append((now, value))
        while items[0][0] < now - self._span:
            items.popleft()
        return items[0][1]


def _last_second(times: deque[float], now: float) -> int:
    while times and times[0] < now - 1.0:
        times.popleft()
    return len(times)


class AdaptiveLimit:
    """The send limit of one credential. Feed it every answer; read :attr:`limit`."""

    def __init__(self, *, initial: int, cap: int, now: float) -> None:
        if not 1 <= initial <= cap:
            raise ValueError(f"need 1 <= initial ({initial}) <= cap ({cap})")
        self.limit = initial
        self.floor = initial
        self.cap = cap
        self.slow_start = True
        self._baseline = _SlidingMin(BASELINE_SECONDS)
        self._latency: float | None = None  # the last window's median, once one closed
        self._answered: deque[float] = deque()  # when answers came, over the last second
        self._pushed: deque[float] = deque()  # when push-back came, over the last second
        self._high = 0.0  # the ratio of the previous window, when it was over SHRINK_ABOVE
        self._probes = 0  # growing windows in a row since slow start ended
        self._pushed_at = -math.inf  # when the provider's push-back last cut the limit
        self._wall = 0  # the limit that carried the provider's rate then
        self._signal = ""  # the last push-back's
        self._open_window(now)

    def _open_window(self, now: float, *, cut: bool = False) -> None:
        self._window_start = now
        self._latencies: list[float] = []
        self._overloads = 0
        self._peak = 0
        self._rate_held = 0
        self._cut = cut  # a push-back cut opened it

    def answered(
        self, latency: float, *, started: float, in_flight: int, rate_held: bool, now: float
    ) -> Change | None:
        """A send started at ``started`` (``in_flight`` sends out, itself included) got an
        answer showing the provider coping — an acceptance or a refusal of the message —
        after ``latency`` seconds; ``rate_held``: it waited for the credential's rate
        limit first. Returns the change it leads to, if any."""
        answered = self._answered
        answered.append(now)
        if answered[0] < now - 1.0:
            _last_second(answered, now)
        if started < self._window_start:
            return None  # sent under an earlier limit
        self._latencies.append(latency)
        if in_flight > self._peak:
            self._peak = in_flight
        if rate_held:
            self._rate_held += 1
        return self._window_full(now)

    def overloaded(self, signal: str, *, started: float, now: float) -> Change | None:
        """A send started at ``started`` got a 429, a 5xx, a timeout or no connection
        (``signal`` names which, for the log): the provider pushing back. Past the tolerated
        share of answers, the limit is cut at once, at most once per window."""
        self._pushed.append(now)
        pushed = _last_second(self._pushed, now)
        self._signal = signal
        if started < self._window_start:
            return None  # sent under an earlier limit
        self._overloads += 1
        if not self._cut:
            share = pushed / (pushed + _last_second(self._answered, now))
            if pushed >= 2 and share > OVERLOAD_TOLERANCE:
                return self._cut_for(signal, share, now)
        return self._window_full(now)

    def _cut_for(self, signal: str, share: float, now: float) -> Change | None:
        old = self.limit
        rate = _last_second(self._answered, now)  # what the provider took
        if self._latency is None:
            new = carried = int(old * OVERLOAD_BACKOFF)
        else:  # the sends in flight that carried that rate (Little's law)
            carried = int(rate * self._latency)
            new = min(int(old * KEEP_AT_MOST), max(int(old * KEEP_AT_LEAST), carried))
        # A minority pushing back may fail whatever the load: the starting value is kept
        # (below it already, the provider has shown its pushing back is about load)
        lowest = self.floor if share < FLOOR_HOLDS_BELOW and old >= self.floor else 1
        new = max(min(lowest, old), min(old - 1, new))
        self.slow_start, self._probes, self._high = False, 0, 0.0
        self._pushed_at, self._wall = now, carried
        self._open_window(now, cut=True)
        if new == old:  # already 1
            return None
        self.limit = new
        return Change(old, new, Reason.OVERLOAD, signal=signal, share=share, rate=rate)

    def _window_full(self, now: float) -> Change | None:
        if len(self._latencies) + self._overloads < max(MIN_WINDOW, self.limit // 2):
            return None
        return self._close_window(now)

    def _close_window(self, now: float) -> Change | None:
        overloads = self._overloads
        share = overloads / (len(self._latencies) + overloads)
        if share > OVERLOAD_TOLERANCE:  # still pushing back after its window's cut: again
            return self._cut_for(self._signal, share, now)
        if len(self._latencies) < MIN_WINDOW // 2:
            self._open_window(now)
            return None
        return self._judge_latency(now)

    def _judge_latency(self, now: float) -> Change | None:
        latencies = sorted(self._latencies)
        median = latencies[len(latencies) // 2]
        self._latency = median
        baseline = self._baseline.push(now, median)
        ratio = (median + LATENCY_SLACK) / (baseline + LATENCY_SLACK)
        limit = self.limit
        # The limit held the sends back (rather than a lack of messages or the rate limit)
        bound = self._peak >= limit - limit // 16 and (
            self._rate_held <= RATE_HELD_SHARE * len(latencies)
        )
        new, reason = limit, Reason.GROW
        high, self._high = self._high, (ratio if ratio > SHRINK_ABOVE else 0.0)
        latency_counts = limit >= self.floor  # below the starting value, push-back alone does
        if latency_counts and ratio > SHRINK_ABOVE:
            if high:  # two windows in a row: queueing, not a hiccup
                self.slow_start, self._high, self._probes = False, 0.0, 0
                wanted = int(limit * GROW_BELOW / min(ratio, high))
                new, reason = max(self.floor, min(limit - 1, wanted)), Reason.LATENCY_ROSE
        elif latency_counts and ratio > GROW_BELOW and not self.slow_start:
            self._probes = 0  # the knee, or noise: hold
        elif bound:
            if now - self._pushed_at < PUSHBACK_MEMORY:
                # Halfway back to what carried the provider's rate, then one by one past it
                step = max((self._wall - limit) // 2, 1)
            elif self.slow_start:
                step, reason = limit * (SLOW_START_FACTOR - 1), Reason.SLOW_START
            elif limit < self.floor:
                step, reason = min(limit, self.floor - limit), Reason.RECOVER
            else:  # each clean window in a row probes further: √limit, 2·√limit…
                self._probes += 1
                step = math.isqrt(limit) * self._probes
            new = min(self.cap, limit + step)
        self._open_window(now)
        if new == limit:
            return None
        self.limit = new
        return Change(limit, new, reason, median, baseline)


class ChangeLog:
    """Which changes are worth a log line, so that a limit moving every few hundred
    milliseconds logs a few lines, not hundreds: the first change of a credential's limit,
    then its value once at least ``threshold`` away from the value last logged, at most one
    line per credential every ``interval`` seconds. A change held back by the interval is
    logged once the interval has passed (:meth:`due`), if the limit is still that far away.
    Each line goes from the value last logged, so the lines read as one story."""

    def __init__(self, *, interval: float = 5.0, threshold: float = 0.25) -> None:
        self._interval = interval
        self._threshold = threshold
        self._logged: dict[str, tuple[int, float]] = {}
        self.pending: dict[str, Change] = {}
        """Changes held back by the interval, by credential: empty in the steady state."""

    def changed(self, key: str, change: Change, now: float) -> tuple[int, Change] | None:
        """``change`` happened: the value to log it from, and it, when it is worth a line now."""
        last = self._logged.get(key)
        if last is None:
            self._logged[key] = (change.new, now)
            return change.old, change
        value, at = last
        if abs(change.new - value) < self._threshold * value:
            self.pending.pop(key, None)  # back near the value logged: nothing to tell
            return None
        if now - at < self._interval:
            self.pending[key] = change
            return None
        self.pending.pop(key, None)
        self._logged[key] = (change.new, now)
        return value, change

    def due(self, key: str, now: float) -> tuple[int, Change] | None:
        """The change held back for ``key``, once its interval has passed."""
        change = self.pending.get(key)
        if change is None or now - self._logged[key][1] < self._interval:
            return None
        del self.pending[key]
        value = self._logged[key][0]
        self._logged[key] = (change.new, now)
        return value, change
