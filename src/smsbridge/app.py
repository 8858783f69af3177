"""``create_app(settings)``: the ASGI application; its lifespan wires and closes the services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse

from smsbridge import __version__, process_tuning
from smsbridge.api import (
    campaigns,
    consent,
    credentials,
    events,
    hooks,
    messages,
    operations,
    profiles,
    reports,
    short_links,
    surfaces,
)
from smsbridge.api.deps import url_without_nul
from smsbridge.api.fast_path import FastPaths
from smsbridge.api.limits import RequestLimits
from smsbridge.api.problems import install_error_handlers, problem, problem_responses
from smsbridge.api.schemas.base import Health
from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.observability.exposition import MetricsServer, parse_listen
from smsbridge.observability.readiness import ReadinessCheck
from smsbridge.services.catalog import ServiceCatalog, services
from smsbridge.web import admin, apidocs

_ERRORS = problem_responses(
    {
        401: "no valid API key",
        403: "the key's role does not allow this",
        404: "unknown id",
        409: "conflict with the current state",
        422: "invalid input, with the fields at fault",
    }
)


def create_app(
    settings: Settings,
    *,
    prebuilt: Services | None = None,
    run_worker: bool = False,
    settle: bool = False,
) -> FastAPI:
    """The application; with ``run_worker`` an in-process delivery worker runs beside it.

    ``prebuilt`` services (tests) are used as given and not closed. ``settle``: the app owns
    its process (``smsbridge serve``) and tunes it once started (:func:`process_tuning.settle`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = prebuilt if prebuilt is not None else await build_services(settings)
        handed: ServiceCatalog = built  # what handlers see of it (mypy checks it fits)
        app.state.services = handed
        app.state.metrics = built.metrics
        app.state.readiness = ReadinessCheck(built.db)
        metrics_server = None
        if settings.metrics_listen:  # /metrics without a key, on an address of its own
            metrics_server = MetricsServer(built.metrics, *parse_listen(settings.metrics_listen))
            await metrics_server.start()
        app.state.metrics_server = metrics_server
        if settle:
            process_tuning.settle()
        tasks: list[asyncio.Task[None]] = []
        if run_worker:
            worker = built.new_worker()
            runner = built.new_campaign_runner()
            tasks.append(asyncio.create_task(worker.run(), name="delivery-worker"))
            tasks.append(asyncio.create_task(runner.run(), name="campaign-runner"))
            dispatcher = built.new_event_dispatcher()
            tasks.append(asyncio.create_task(dispatcher.run(), name="event-dispatcher"))
        try:
            yield
        finally:
            if tasks:
                worker.stop()
                runner.stop()
                dispatcher.stop()
                await asyncio.gather(*tasks)
            if metrics_server is not None:
                await metrics_server.stop()
            if prebuilt is None:
                await built.close()

    app = FastAPI(
        title="smsbridge",
        version=__version__,
        description="Send SMS through any HTTP SMS provider.",
        lifespan=lifespan,
        responses=_ERRORS,
        docs_url=None,  # served by apidocs.install, from this server's files (no CDN)
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(
        RequestLimits,
        max_request_bytes=settings.max_request_bytes,
        max_import_bytes=settings.max_import_bytes,
    )
    for api in (credentials, surfaces, messages, profiles, campaigns, reports, consent):
        app.include_router(api.router, dependencies=[Depends(url_without_nul)])
    app.include_router(events.router, dependencies=[Depends(url_without_nul)])
    app.include_router(short_links.router)
    app.include_router(operations.router)
    app.include_router(hooks.router, dependencies=[Depends(url_without_nul)])
    admin.install(app)
    apidocs.install(app)
    # Outermost: well-formed sends and webhooks skip the stack above (see api/fast_path.py).
    app.add_middleware(
        FastPaths,
        catalog=lambda: app.state.services,
        max_request_bytes=settings.max_request_bytes,
    )

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        """The server's root leads to the admin (which asks to sign in)."""
        return RedirectResponse("/admin", status_code=307)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["health"],
        responses=problem_responses({503: "the database does not answer"}),
    )
    async def healthz(svc: ServiceCatalog = Depends(services)) -> object:
        try:
            await svc.db.ping()
        except Exception:  # the database is down or unreachable: report, don't crash
            return problem(503, "database unavailable", slug="unavailable")
        return {"status": "ok", "database": "ok"}

    return app
