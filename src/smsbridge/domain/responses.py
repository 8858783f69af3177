"""Reading provider responses: message ids, and short summaries safe to store and show."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import jsonpath_rfc9535
import orjson

_MAX_ID = 200


@lru_cache(maxsize=1024)
def compiled_path(path: str) -> jsonpath_rfc9535.JSONPathQuery:
    """A compiled JSONPath query; compiling costs far more than evaluating."""
    return jsonpath_rfc9535.compile(path)


def extract_message_id(body: bytes, path: str | None) -> str | None:
    """The provider's message id at JSONPath ``path`` in a JSON body, if there is one."""
    if not path or not body:
        return None
    try:
        document = orjson.loads(body)
        node = compiled_path(path).find_one(document)
    except (orjson.JSONDecodeError, jsonpath_rfc9535.JSONPathError):
        return None
    if node is None or isinstance(node.value, dict | list | bool) or node.value in (None, ""):
        return None
    return str(node.value)[:_MAX_ID]


def refused_in_body(body: bytes, path: str | None, accepted: tuple[str, ...]) -> str | None:
    """For providers answering 2xx to refusals (Vonage): the refusal status, or None.

    When ``path`` is set, a 2xx response counts as accepted only if the value found there is
    one of ``accepted``.
    """
    if not path:
        return None
    try:
        node = compiled_path(path).find_one(orjson.loads(body))
    except (orjson.JSONDecodeError, jsonpath_rfc9535.JSONPathError):
        return "unreadable"
    value = None if node is None else node.value
    if value is not None and str(value) in accepted:
        return None
    return str(value)[:40] if value is not None else "missing"


def summarize_status(status: int) -> str:
    """A short verdict for an HTTP status; never the provider's body, which may echo secrets."""
    if status in (401, 403):
        return f"provider rejected the credentials ({status})"
    if status == 404:
        return "provider URL not found (404)"
    if status == 429:
        return "provider rate limit reached (429)"
    if 300 <= status < 400:
        return f"provider answered with a redirect ({status}); redirects are not followed"
    if 400 <= status < 500:
        return f"provider refused the request ({status})"
    if status >= 500:
        return f"provider error ({status})"
    return f"unexpected provider status ({status})"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``****``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "****")
    return text
