"""The admin UI on the application: the shell (:mod:`smsbridge.web.shell`), then every page
module's routes, in the order they are matched."""

from __future__ import annotations

from fastapi import FastAPI

from smsbridge.web import (
    campaigns,
    compose,
    credentials,
    events,
    messages,
    profiles,
    reports,
    shell,
    sign_in,
    surfaces,
)


def install(app: FastAPI) -> None:
    """Mount the admin on ``app``."""
    shell.mount(app)
    for pages in (
        sign_in,
        credentials,
        surfaces,
        events,
        compose,
        campaigns,
        profiles,
        messages,
        reports,
    ):
        app.include_router(pages.router)
