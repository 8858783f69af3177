"""``create_app(settings)``: the ASGI application; its lifespan wires and closes the services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from smsbridge import __version__
from smsbridge.api import (
    campaigns,
    consent,
    credentials,
    hooks,
    messages,
    profiles,
    public,
    reports,
    surfaces,
)
from smsbridge.api.deps import services
from smsbridge.api.problems import install_error_handlers, problem
from smsbridge.api.schemas import Health, Problem
from smsbridge.config import Settings
from smsbridge.web import routes as admin
from smsbridge.wiring import Services, build_services

_ERRORS = {
    status: {"model": Problem, "content": {"application/problem+json": {}}}
    for status in (401, 403, 404, 409, 422)
}


def create_app(
    settings: Settings, *, prebuilt: Services | None = None, run_worker: bool = False
) -> FastAPI:
    """The application; with ``run_worker`` an in-process delivery worker runs beside it.

    ``prebuilt`` services (tests) are used as given and not closed.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = prebuilt if prebuilt is not None else await build_services(settings)
        app.state.services = built
        tasks: list[asyncio.Task[None]] = []
        if run_worker:
            worker = built.new_worker()
            runner = built.new_campaign_runner()
            tasks.append(asyncio.create_task(worker.run(), name="delivery-worker"))
            tasks.append(asyncio.create_task(runner.run(), name="campaign-runner"))
        try:
            yield
        finally:
            if tasks:
                worker.stop()
                runner.stop()
                await asyncio.gather(*tasks)
            if prebuilt is None:
                await built.close()

    app = FastAPI(
        title="smsbridge",
        version=__version__,
        description="Send SMS through any HTTP SMS provider.",
        lifespan=lifespan,
        responses=_ERRORS,  # type: ignore[arg-type]
    )
    install_error_handlers(app)
    app.include_router(credentials.router)
    app.include_router(surfaces.router)
    app.include_router(messages.router)
    app.include_router(profiles.router)
    app.include_router(campaigns.router)
    app.include_router(reports.router)
    app.include_router(consent.router)
    app.include_router(public.router)
    app.include_router(hooks.router)
    admin.install(app)

    @app.get(
        "/healthz", response_model=Health, tags=["health"], responses={503: {"model": Problem}}
    )
    async def healthz(svc: Services = Depends(services)) -> object:
        try:
            await svc.db.ping()
        except Exception:  # the database is down or unreachable: report, don't crash
            return problem(503, "database unavailable", slug="unavailable")
        return {"status": "ok", "database": "ok"}

    return app
