"""Security headers on every admin response (pages, redirects, refusals, static files).

The admin must not be framed (clickjacking a "Delete" or "Launch" button), sniffed into
another content type, or leak its URLs (credential and campaign ids) in ``Referer``. Its
scripts are files served from ``/admin/static`` only, so the policy allows no inline script;
inline styles stay allowed (``style`` attributes, and the rules htmx adds for indicators).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
ADMIN_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class AdminSecurityHeaders:
    """ASGI middleware: adds :data:`ADMIN_HEADERS` to responses under ``prefix``."""

    def __init__(self, app: ASGIApp, prefix: str = "/admin") -> None:
        self._app = app
        self._prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == self._prefix or path.startswith(self._prefix + "/")):
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ADMIN_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self._app(scope, receive, send_with_headers)
