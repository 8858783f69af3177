"""The one place where errors become HTTP responses: RFC 9457 ``application/problem+json``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from smsbridge.api.schemas.base import Problem
from smsbridge.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidInput,
    MalformedWebhook,
    NotFound,
    PermissionDenied,
    SecretsUnavailable,
    SmsbridgeError,
    WebhookNotAuthentic,
)

log = logging.getLogger("smsbridge.api")

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[SmsbridgeError], int, str]] = [
    (InvalidInput, 422, "invalid-input"),
    (MalformedWebhook, 400, "malformed-webhook"),
    (WebhookNotAuthentic, 403, "webhook-not-authentic"),
    (NotFound, 404, "not-found"),
    (Conflict, 409, "conflict"),
    (AuthenticationRequired, 401, "unauthenticated"),
    (PermissionDenied, 403, "forbidden"),
    (SecretsUnavailable, 500, "secrets-unavailable"),
]

_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal error",
}


def problem_responses(described: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for problem answers: their description by status.

    The schema sits under ``application/problem+json``, the type these answers carry; FastAPI
    also lists it under ``application/json`` because of ``model``, which registers it.
    """
    return {
        status: {
            "model": Problem,
            "description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, description in described.items()
    }


# Every operation with a JSON body: FastAPI answers 400 when the body cannot be decoded at all
# (not UTF-8); well-formed text that is not valid JSON is a 422 like any other invalid input.
UNREADABLE_BODY = problem_responses({400: "the body could not be read (not UTF-8)"})


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:smsbridge:problem:{slug}" if slug else "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "errors": errors or [],
    }
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        # pydantic adds the member of a union it tried (``str``, ``SecretHint``…) or a
        # validator's name to the location; the field path is what users need to see
        elif isinstance(part, str) and (
            part.startswith(("function-", "tagged-union["))
            or part in ("str", "int", "float", "bool", "dict[str,any]", "list[any]", "SecretHint")
        ):
            continue
        else:
            text += ("." if text else "") + str(part)
    # A field name is the client's own text (an unknown key): a NUL or a lone surrogate in it
    # is shown escaped, since the answer is encoded as JSON (orjson refuses a lone surrogate)
    # and may be stored (a batch's Idempotency-Key record: PostgreSQL's JSON refuses U+0000).
    name = (text or (str(loc[0]) if loc else "body")).replace("\x00", "\\u0000")
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


async def _smsbridge_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SmsbridgeError)
    return error_problem(exc)


def error_problem(exc: SmsbridgeError) -> Response:
    """The problem answer for one of our errors (also used by middleware, outside routing)."""
    for kind, status, slug in _STATUS:
        if isinstance(exc, kind):
            errors = (
                [{"field": e.field, "message": e.message} for e in exc.errors]
                if isinstance(exc, InvalidInput | Conflict)
                else None
            )
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            if status >= 500:
                log.error("request failed: %s", exc.message)
            return problem(status, exc.message, slug=slug, errors=errors, headers=headers)
    log.error("unmapped error %s: %s", type(exc).__name__, exc.message)
    return problem(500, "internal error", slug="internal")


def field_errors(
    exc: RequestValidationError | ValidationError, *, whole: str = "body"
) -> list[tuple[str, str]]:
    """(field, message) of each of pydantic's errors, as users read them, without repeats;
    an error about the value as a whole (no location) is named ``whole``."""
    found: dict[tuple[str, str], None] = {}
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        found[(_field(loc) if loc else whole, str(error.get("msg", "invalid")))] = None
    return list(found)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": field, "message": message} for field, message in field_errors(exc)]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return problem(422, detail or "invalid request", slug="invalid-input", errors=errors)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    return problem(exc.status_code, detail, headers=dict(exc.headers or {}))


async def _client_gone(_request: Request, exc: Exception) -> Response:
    # The client hung up before its body arrived (a provider giving up on a slow webhook, a
    # closed tab): nobody reads this answer, and it is not a server error.
    log.info("the client went away before its request body arrived")
    return problem(400, "the request body did not arrive: the client disconnected")


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error (%s)", type(exc).__name__)
    return problem(500, "internal error; see the server log", slug="internal")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SmsbridgeError, _smsbridge_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
