"""Request dependencies: the wired services and the caller's API key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from smsbridge.api.schemas import NUL_REFUSED
from smsbridge.errors import InvalidInput
from smsbridge.services.api_keys import Principal, Role
from smsbridge.wiring import Services

_bearer = HTTPBearer(auto_error=False, description="An smsbridge API key")


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    token = credentials.credentials if credentials is not None else None
    return await services(request).api_keys.authenticate(token)


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys whose role includes ``role``."""

    async def check(who: Principal = Depends(principal)) -> Principal:
        who.require(role)
        return who

    return check


async def url_without_nul(request: Request) -> None:
    """Refuse U+0000 in path and query values, as :class:`smsbridge.api.schemas.Strict` does in
    bodies: PostgreSQL cannot compare or store it."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput.one(name, NUL_REFUSED)
