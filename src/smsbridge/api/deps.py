"""Request dependencies of the API: the caller's API key, clean path and query values.

The services come from :func:`smsbridge.services.catalog.services`, which ``web/`` shares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from smsbridge.api.schemas.base import NUL_REFUSED
from smsbridge.errors import InvalidInput
from smsbridge.services.api_keys import Principal, Role
from smsbridge.services.catalog import catalog_of, services

__all__ = ["AUTHENTICATED", "authenticate", "principal", "require", "services", "url_without_nul"]

_bearer = HTTPBearer(auto_error=False, description="An smsbridge API key")


AUTHENTICATED = "smsbridge.principal"
"""Scope key where :class:`smsbridge.api.limits.RequestLimits` leaves the key it checked before
the body was read, so that the dependency does not look it up again."""


async def authenticate(connection: HTTPConnection) -> Principal:
    """The caller's key from its ``Authorization: Bearer`` header, checked once per request."""
    known = connection.scope.get(AUTHENTICATED)
    if isinstance(known, Principal):
        return known
    credentials = await _bearer(connection)
    token = credentials.credentials if credentials is not None else None
    found = await catalog_of(connection).api_keys.authenticate(token)
    connection.scope[AUTHENTICATED] = found
    return found


async def principal(
    request: Request,
    _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    # ``_credentials`` declares the security scheme in OpenAPI; the header is read here
    return await authenticate(request)


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys whose role includes ``role``."""

    async def check(who: Principal = Depends(principal)) -> Principal:
        who.require(role)
        return who

    return check


async def url_without_nul(request: Request) -> None:
    """Refuse U+0000 in path and query values, as :class:`smsbridge.api.schemas.base.Strict` does in
    bodies: PostgreSQL cannot compare or store it."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput.one(name, NUL_REFUSED)
