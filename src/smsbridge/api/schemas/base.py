"""What every API schema shares: request bodies that refuse unknown fields and NUL, free-form
JSON objects of bounded depth and size, vocabularies taken from the domain, and the error and
health documents.

Semantic checks (placeholders, header names, URL policy, JSONPath…) live in ``domain/`` so the
API, the CLI and presets share them; these models only shape the request. Every closed list of
values (auth types, statuses, methods…) comes from the domain's enums and field lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

NUL_REFUSED = "must not contain NUL characters (U+0000)"


SURROGATE_REFUSED = "must be valid Unicode (an unpaired UTF-16 surrogate such as \\ud800 is not)"


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_REFUSED
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # JSON's escapes allow "\\ud800"; Python's parser keeps it
            return SURROGATE_REFUSED
    return None


def _unstorable(value: Any) -> str | None:
    """Why a JSON value cannot be stored, or None: U+0000 in a string or a key (PostgreSQL
    refuses it), or a lone UTF-16 surrogate (no database, driver or JSON encoder writes it).
    One walk; nested models check themselves."""
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, dict):
        for key, item in value.items():
            found = _text_problem(key) if isinstance(key, str) else None
            found = found or _unstorable(item)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            if found := _unstorable(item):
                return found
    return None


class Strict(BaseModel):
    """A request body: unknown fields are refused, and so is U+0000 in any text, which
    PostgreSQL cannot store (SQLite can; both refuse it here, alike), and any text that is not
    valid Unicode (a lone surrogate), which nothing can store."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        problem = _unstorable(value)
        if problem:
            raise ValueError(problem)
        return value


_INT_RANGE = range(-(2**63), 2**64)


def _big_integer_at(value: Any, path: str) -> str | None:
    """Where ``value`` holds an integer outside 64 bits, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value in _INT_RANGE else path or "the value"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _big_integer_at(item, f"{path}[{key!r}]" if path else f"[{key!r}]")
        if found is not None:
            return found
    return None


def _fits_64_bits(value: dict[str, Any]) -> dict[str, Any]:
    # JSON allows integers of any size; our JSON encoding (storage, idempotency hashes) does not.
    found = _big_integer_at(value, "")
    if found is not None:
        raise ValueError(f"{found} is an integer outside 64 bits")
    return value


MAX_JSON_DEPTH = 32


def _not_too_deep(value: dict[str, Any]) -> dict[str, Any]:
    # Deep values exhaust the recursion of the checks, the encoders and the template renderer
    # after them (a 500); counted without recursion, before any of them runs.
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"is nested deeper than {MAX_JSON_DEPTH} levels")
        pending.extend((child, depth + 1) for child in children)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_not_too_deep), AfterValidator(_fits_64_bits)]
"""A free-form JSON object from a client (variables, attributes, templates)."""


def one_of(values: Iterable[str]) -> Any:
    """``Literal[...]`` of a vocabulary the domain keeps as a tuple (an inline enum in OpenAPI,
    checked like any literal)."""
    return Literal.__getitem__(tuple(values))


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]]


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
