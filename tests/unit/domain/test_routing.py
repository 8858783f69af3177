"""route_step: which credential of a route each attempt uses (failover, breakers, unusable)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smsbridge.domain.breaker import CircuitBreakers
from smsbridge.domain.ports import LoadedCredentials
from smsbridge.domain.routing import Failover, RouteStep, load_route, route_step

NOW = datetime(2026, 1, 1, tzinfo=UTC)
COOLDOWN = timedelta(seconds=30)
USABLE: Any = object()  # route_step looks only at None versus not None


def _route(*usable: bool) -> list[tuple[str, Any]]:
    return [(f"cred_{i}", USABLE if ok else None) for i, ok in enumerate(usable)]


def _breakers(*open_ids: str) -> CircuitBreakers:
    breakers = CircuitBreakers(threshold=1, cooldown=COOLDOWN)
    for credential_id in open_ids:
        breakers.failed(credential_id, NOW)
    return breakers


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        (1, (0, 0, 1, None)),
        (3, (0, 0, 3, None)),
        (4, (1, 1, 1, Failover.BUDGET_SPENT)),
        (6, (1, 1, 3, Failover.BUDGET_SPENT)),
        (7, (2, 2, 1, Failover.BUDGET_SPENT)),
        (12, (2, 2, 6, Failover.BUDGET_SPENT)),  # past the end: the last one's budget
    ],
)
def test_each_credential_has_the_whole_budget(attempt: int, expected: RouteStep) -> None:
    assert route_step(_route(True, True, True), attempt, 3, _breakers(), NOW) == expected


def test_an_open_breaker_sends_the_attempt_to_the_next_credential() -> None:
    step = route_step(_route(True, True), 1, 3, _breakers("cred_0"), NOW)
    assert step == (1, 0, 1, Failover.CIRCUIT_OPEN)


def test_with_every_breaker_open_the_stage_credential_is_tried_anyway() -> None:
    step = route_step(_route(True, True), 2, 3, _breakers("cred_0", "cred_1"), NOW)
    assert step == (0, 0, 2, None)


def test_a_lone_credential_ignores_its_breaker() -> None:
    breakers = _breakers("cred_0")
    assert route_step(_route(True), 1, 3, breakers, NOW) == (0, 0, 1, None)
    assert not breakers.allow("cred_0", NOW)  # still open: it was not consulted


def test_an_unusable_credential_is_passed_over() -> None:
    step = route_step(_route(False, True), 1, 3, _breakers(), NOW)
    assert step == (1, 0, 1, Failover.CREDENTIAL_UNUSABLE)


def test_nothing_usable_from_the_stage_on() -> None:
    assert route_step(_route(True, False), 4, 3, _breakers(), NOW) == (None, 1, 1, None)
    assert route_step(_route(False), 1, 3, _breakers(), NOW) == (None, 0, 1, None)


def test_breakers_are_asked_in_route_order_up_to_the_first_that_allows() -> None:
    breakers = _breakers("cred_0", "cred_1", "cred_2")
    later = NOW + COOLDOWN  # every breaker half-open: each lets one probe through
    assert route_step(_route(True, True, True), 1, 3, breakers, later)[0] == 0
    assert route_step(_route(True, True, True), 1, 3, breakers, later)[0] == 1
    assert breakers.allow("cred_2", later)  # its probe was not taken by the two steps above


def test_load_route_keeps_unusable_credentials_in_place_and_drops_deleted_ones() -> None:
    primary, fallback = object(), object()
    loaded = LoadedCredentials(
        usable={"p": primary, "f2": fallback},  # type: ignore[dict-item]
        unusable={"f1": "credential f1 cannot be used: auth.token: is required"},
    )
    route = load_route("p", ["f1", "gone", "f2"], loaded)
    assert route == (
        primary,
        (("f1", None), ("f2", fallback)),
        {"f1": "credential f1 cannot be used: auth.token: is required"},
    )


def test_load_route_without_a_usable_primary() -> None:
    loaded = LoadedCredentials(usable={}, unusable={"p": "why"})
    assert load_route("p", None, loaded) == (None, (), {"p": "why"})
    assert load_route(None, None, loaded) == (None, (), {})
