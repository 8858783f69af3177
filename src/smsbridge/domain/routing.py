"""Failover routing: which credential of a surface's route one attempt goes through.

A surface's route is its primary credential, then its fallbacks in order. Each credential of
the route has the retry policy's whole budget: attempts 1..max go to the primary,
max+1..2·max to the first fallback, and so on, so where a message stands (its *stage*)
follows from its attempt count alone. When a credential's budget is spent on transient
failures, the message moves on to the next credential at once; when the last one's is spent,
it fails. Permanent refusals (4xx other than 429) fail the message wherever they happen:
another provider would refuse the same request. While a credential's circuit breaker is open
(:mod:`smsbridge.domain.breaker`) the attempt goes to the next credential of the route whose
breaker lets it through, counted against the current budget; with none, the current
credential is tried anyway, as with no fallback at all.

**Unusable credentials.** A stored credential that today's rules refuse (a row from before a
rule, ``http://`` after private provider URLs were turned off, secrets the keys cannot open)
keeps its place on the route but is passed over, like one with an open breaker; when nothing
usable is left on the route from where the message stands, the message fails at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from smsbridge.domain.breaker import CircuitBreakers
from smsbridge.domain.credentials import Credential
from smsbridge.domain.ports import LoadedCredentials

Route = Sequence[tuple[str, Credential | None]]
"""Credential ids in route order, each with its credential, or None when it cannot be used."""


class Failover(StrEnum):
    """Why an attempt goes through another credential than the route's primary."""

    BUDGET_SPENT = "budget_spent"
    """The credentials before this one spent their budgets."""
    CIRCUIT_OPEN = "circuit_open"
    """The stage's credential's breaker is open."""
    CREDENTIAL_UNUSABLE = "credential_unusable"
    """The stage's credential cannot be used."""


LoadedRoute = tuple[Credential | None, tuple[tuple[str, Credential | None], ...], dict[str, str]]
"""A message's route with its credentials loaded: ``(credential, fallbacks, unusable)`` — the
primary (None when it cannot be used or is gone), the fallbacks by id in order (None for one
that cannot be used; a deleted one drops out), and why each unusable one cannot be used, by
id. A plain tuple: this runs for every message claimed."""


def load_route(
    credential_id: str | None, fallback_ids: Sequence[str] | None, loaded: LoadedCredentials
) -> LoadedRoute:
    """The route of a message whose surface sends through ``credential_id``, then
    ``fallback_ids``, from the credentials ``loaded`` for its batch."""
    usable, unusable = loaded.usable, loaded.unusable
    credential = usable.get(credential_id) if credential_id else None
    # An unusable fallback keeps its place (attempt counts map to places on the route)
    fallbacks = tuple(
        (i, usable.get(i)) for i in fallback_ids or () if i in usable or i in unusable
    )
    reasons = {
        i: unusable[i]
        for i in (credential_id, *(fallback_ids or ()))
        if i is not None and i in unusable
    }
    return credential, fallbacks, reasons


RouteStep = tuple[int | None, int, int, "Failover | None"]
"""Where one attempt stands on its route and which credential it uses: ``(chosen, stage,
stage_attempt, failover)`` — the index on the route of the credential to use (None: nothing
usable from the stage on), the index of the credential whose budget the attempt counts
against, the attempt's number within that budget (1-based), and why ``chosen`` is not the
route's first credential. A plain tuple: this runs for every message sent."""


def route_step(
    route: Route, attempt: int, budget: int, breakers: CircuitBreakers, now: datetime
) -> RouteStep:
    """The step of ``attempt`` (1-based, counted over the whole route) with ``budget``
    attempts per credential; consults ``breakers`` as :func:`pick` says."""
    if len(route) == 1:  # the common case: no alternative, no breaker to consult
        return (0 if route[0][1] is not None else None), 0, attempt, None
    stage = min((attempt - 1) // budget, len(route) - 1)
    chosen = pick(route, stage, breakers, now)
    failover: Failover | None = None
    if chosen is not None:
        if chosen > stage:
            unusable = route[stage][1] is None
            failover = Failover.CREDENTIAL_UNUSABLE if unusable else Failover.CIRCUIT_OPEN
        elif chosen > 0:
            failover = Failover.BUDGET_SPENT
    return chosen, stage, attempt - stage * budget, failover


def pick(route: Route, stage: int, breakers: CircuitBreakers, now: datetime) -> int | None:
    """The credential for this attempt: the stage's own, unless its breaker is open or it
    cannot be used; then the next usable one along the route whose breaker lets a request
    through; with none, the first usable one from the stage on anyway (a breaker keeps no
    one from sending, it only redirects). None when no credential from the stage on can
    be used. Breakers are asked in route order, stopping at the first that allows (asking
    a half-open breaker takes its one probe)."""
    usable = [i for i in range(stage, len(route)) if route[i][1] is not None]
    if len(route) == 1:
        return usable[0] if usable else None  # no alternative: no breaker to consult
    for index in usable:
        if breakers.allow(route[index][0], now):
            return index
    return usable[0] if usable else None
