"""Log lines for people and for log pipelines, never carrying a secret.

``SMSBRIDGE_LOG_FORMAT=text`` (default): ``LEVEL logger: message``. ``json``: one JSON object
per line, ``{"time", "level", "logger", "message"}`` plus the ids a record carries
(``message_id``, ``campaign_id``, ``credential_id``, ``surface_id``, ``worker``, passed as
``extra={...}``) and ``exception`` when there is one.

What a formatter writes goes through :func:`mask_secrets` whichever the format: webhook URL
tokens keep their first four characters (as in the access log), ``Bearer``/``Basic``
authorization values, passwords in URLs and secret-named query parameters are replaced. Only
the ids above are taken from ``extra``: a record's other attributes (a credential object, a
token passed along by mistake) are never written.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("message_id", "campaign_id", "credential_id", "surface_id", "worker")
"""The record attributes a JSON line carries when present."""

_MAX_ID = 80

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # the token of /hooks/inbound/{token} and /hooks/status/{token} authenticates webhooks
    (re.compile(r"(/hooks/(?:inbound|status)/)([^/?#\s\"']{4})[^/?#\s\"']*"), r"\1\2…"),
    (re.compile(r"(/hooks/(?:inbound|status)/)[^/?#\s\"'…]{1,3}(?=[/?#\s\"']|$)"), r"\1…"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"), r"\1 ****"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@"), r"\1****@"),
    (
        re.compile(
            r"(?i)\b((?:access_|api_|auth_|client_)?(?:token|secret|password|key|signature)"
            r"s?=)[^&\s\"']+"
        ),
        r"\1****",
    ),
)


def mask_secrets(text: str) -> str:
    """``text`` with webhook tokens, authorization values and URL or query secrets masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message``, masked."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None and value != "":
                entry[name] = mask_secrets(str(value))[:_MAX_ID]
        if record.exc_info:
            entry["exception"] = mask_secrets(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = mask_secrets(record.exc_text)
        if record.stack_info:
            entry["stack"] = mask_secrets(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


LOG_FORMATS = ("text", "json")


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return TextFormatter()


def configure_logging(level: str, log_format: str = "text") -> None:
    """The root logger writes to stderr in ``log_format`` at ``level``: what ``serve``,
    ``worker`` and the other long-running commands call once, first thing."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(log_format))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "smsbridge_configured", False):
            root.removeHandler(existing)
    handler.smsbridge_configured = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
