"""Judging provider answers: accepted or not (:func:`judge_response`), the message id and error
codes they carry, and short summaries safe to store and show (secrets redacted)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import jsonpath_rfc9535
import orjson

from smsbridge.domain.credentials import Credential
from smsbridge.domain.ports import ProviderResponse
from smsbridge.domain.retry import Outcome, OutcomeKind, parse_retry_after
from smsbridge.errors import DeliveryError, DestinationBlocked, ProviderTimeout

_MAX_ID = 200


_SIMPLE_STEP = re.compile(
    r"""\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^'\\]*)'\]|\["([^"\\]*)"\]"""
)
_MISSING = object()
MISSING = _MISSING
"""What :meth:`CompiledPath.first` answers when the path selects nothing."""


@dataclass(frozen=True)
class CompiledPath:
    """A JSONPath query, with a direct walk for the common ``$.a[0]['b-c']`` form.

    Provider ids sit at simple paths; walking them costs a microsecond where the general
    RFC 9535 evaluator costs tens, on every message sent.
    """

    query: jsonpath_rfc9535.JSONPathQuery
    steps: tuple[str | int, ...] | None

    def first(self, document: object) -> object:
        """The first value the query selects, or ``_MISSING``."""
        if self.steps is None:
            node = self.query.find_one(document)  # type: ignore[arg-type]
            return _MISSING if node is None else node.value
        value = document
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or step >= len(value):
                    return _MISSING
                value = value[step]
            else:
                if not isinstance(value, dict) or step not in value:
                    return _MISSING
                value = value[step]
        return value


@lru_cache(maxsize=1024)
def compiled_path(path: str) -> CompiledPath:
    """A compiled JSONPath query; compiling costs far more than evaluating."""
    query = jsonpath_rfc9535.compile(path)
    steps: list[str | int] = []
    position = 1 if path.startswith("$") else len(path) + 1
    while position < len(path):
        match = _SIMPLE_STEP.match(path, position)
        if match is None:
            return CompiledPath(query, None)
        name, index, single, double = match.groups()
        steps.append(int(index) if index is not None else (name or single or double or ""))
        position = match.end()
    return CompiledPath(query, tuple(steps) if position == len(path) else None)


def extract_message_id(body: bytes, path: str | None, secrets: Iterable[str] = ()) -> str | None:
    """The provider's message id at JSONPath ``path`` in a JSON body, if there is one.

    ``secrets`` — what the request carried (:attr:`Attempt.secrets`) — are masked in it: a
    server that echoes the request (``$.headers.Authorization``) must not turn a secret into a
    message id that any viewer can read.
    """
    if not path or not body:
        return None
    try:
        value = compiled_path(path).first(orjson.loads(body))
    except (orjson.JSONDecodeError, jsonpath_rfc9535.JSONPathError):
        return None
    if value is _MISSING or isinstance(value, dict | list | bool) or value in (None, ""):
        return None
    return redact(str(value), secrets)[:_MAX_ID]  # masked before it is cut


def refused_in_body(body: bytes, path: str | None, accepted: tuple[str, ...]) -> str | None:
    """For providers answering 2xx to refusals (Vonage): the refusal status, or None.

    When ``path`` is set, a 2xx response counts as accepted only if the value found there is
    one of ``accepted``.
    """
    if not path:
        return None
    try:
        found = compiled_path(path).first(orjson.loads(body))
    except (orjson.JSONDecodeError, jsonpath_rfc9535.JSONPathError):
        return "unreadable"
    value = None if found is _MISSING else found
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


def judge_response(response: ProviderResponse, credential: Credential, now: datetime) -> Outcome:
    """What a provider's answer means: accepted, or rejected with a short, safe reason.

    The one place that decides it, for real sends and for credential tests alike.
    """
    status = response.status
    if 200 <= status < 300:
        refusal = (
            refused_in_body(response.body, credential.success_path, credential.success_values)
            if credential.success_path
            else None
        )
        if refusal is None:
            return Outcome(OutcomeKind.ACCEPTED, status=status)
        # A refusal inside a 2xx is final, like a 4xx: retrying sends the same request.
        return Outcome(
            OutcomeKind.REJECTED,
            status=422,
            reason=f"provider refused the message (status {refusal})",
        )
    return Outcome(
        OutcomeKind.REJECTED,
        status=status,
        retry_after=parse_retry_after(response.headers.get("retry-after"), now),
        reason=summarize_status(status),
    )


_CODE_KEYS = frozenset({"code", "error_code", "errorCode", "error-code"})


def judge_no_answer(error: DeliveryError, secrets: Iterable[str]) -> Outcome:
    """The outcome of a send that got no complete answer: blocked by our own guard, ambiguous
    after a timeout (the provider may have the message), unreachable otherwise."""
    reason = redact(error.message, secrets)
    if isinstance(error, DestinationBlocked):
        return Outcome(OutcomeKind.BLOCKED, reason=reason)
    if isinstance(error, ProviderTimeout):
        return Outcome(OutcomeKind.AMBIGUOUS, reason=reason)
    return Outcome(OutcomeKind.UNREACHABLE, reason=reason)


def error_codes(body: bytes) -> set[str]:
    """Every error code a provider's JSON answer carries (values of ``code``-like keys, at any
    depth: Twilio's ``{"code": 21610}``, Telnyx's ``{"errors": [{"code": "40300"}]}``)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return set()
    found: set[str] = set()
    stack: list[object] = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key in _CODE_KEYS and isinstance(item, str | int) and not isinstance(item, bool):
                    found.add(str(item))
                else:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    return found
