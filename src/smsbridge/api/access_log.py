"""Access logs without webhook tokens.

The token in ``/hooks/inbound/{token}`` and ``/hooks/status/{token}`` is what authenticates a
provider's webhook: anyone who reads it in a log could post forged delivery reports or STOPs.
Access log lines keep its first four characters, enough to tell surfaces apart.
"""

from __future__ import annotations

import logging
import re

_HOOK_TOKEN = re.compile(r"(/hooks/(?:inbound|status)/)([^/?#\s\"]{4})[^/?#\s\"]*")


def mask_webhook_tokens(text: str) -> str:
    """``text`` with every webhook token cut to its first four characters and ``…``."""
    return _HOOK_TOKEN.sub(r"\1\2…", text)


class WebhookTokenFilter(logging.Filter):
    """Masks webhook tokens in a record's arguments (uvicorn passes the path as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                mask_webhook_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = mask_webhook_tokens(record.msg)
        return True


def install() -> None:
    """Mask tokens in uvicorn's access log (call before the server starts)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, WebhookTokenFilter) for f in access.filters):
        access.addFilter(WebhookTokenFilter())
