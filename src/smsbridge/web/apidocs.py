"""The interactive API documentation at ``/docs``, served without a CDN.

FastAPI's default ``/docs`` (and ``/redoc``) load their scripts from a CDN, so on a machine
without internet access the page stays blank. Here Swagger UI's files are vendored under
``static/apidocs/`` (see its README) and served with the admin's static files; ``/redoc`` leads
to ``/docs``. The page carries its own Content-Security-Policy: scripts from this server only,
plus the one inline script FastAPI writes to start Swagger UI, allowed by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from smsbridge.web.headers import ADMIN_HEADERS
from smsbridge.web.shell import STATIC

ASSETS = f"{STATIC}/apidocs"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def script_hashes(html: str) -> list[str]:
    """The CSP sources (``'sha256-…'``) allowing each inline ``<script>`` of ``html``."""
    digests = (hashlib.sha256(body.encode()).digest() for body in _INLINE_SCRIPT.findall(html))
    return [f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests]


def docs_policy(html: str) -> str:
    """The Content-Security-Policy of the docs page ``html``."""
    return "; ".join(
        (
            "default-src 'self'",
            " ".join(("script-src 'self'", *script_hashes(html))),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def install(app: FastAPI, *, path: str = "/docs") -> None:
    """``/docs`` (Swagger UI from this server's files) and ``/redoc`` (leads to ``/docs``) on
    ``app``, which must be created with ``docs_url=None, redoc_url=None``."""
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        oauth2_redirect_url=None,
        # No badge image from Swagger's online validator: nothing leaves this server.
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    headers = {
        **ADMIN_HEADERS,
        "Content-Security-Policy": docs_policy(html),
        "Cache-Control": "no-cache",
    }

    @app.get(path, include_in_schema=False)
    async def api_docs() -> Response:
        """Swagger UI: every operation, with *Try it out* against this server."""
        return HTMLResponse(html, headers=headers)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> Response:
        return RedirectResponse(path, status_code=307)
