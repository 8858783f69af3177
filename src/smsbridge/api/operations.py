"""``GET /readyz`` and ``GET /metrics`` (beside ``/healthz``): what operators and their tools ask.

``/readyz`` is public like ``/healthz`` and says only ready or why not (fixed sentences).
``/metrics`` needs an API key of any role (viewer and up); ``SMSBRIDGE_METRICS_LISTEN`` serves
the same figures on an address of its own without a key
(:mod:`smsbridge.observability.exposition`). Both read what the application's lifespan left on
``app.state``: the process's :class:`~smsbridge.observability.metrics.Metrics` and its
:class:`~smsbridge.observability.readiness.ReadinessCheck`.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from smsbridge.api.deps import require
from smsbridge.api.problems import problem, problem_responses
from smsbridge.observability.exposition import CONTENT_TYPE
from smsbridge.observability.metrics import Metrics
from smsbridge.observability.readiness import ReadinessCheck
from smsbridge.services.api_keys import Role

router = APIRouter(tags=["health"])


class Ready(BaseModel):
    status: Literal["ready"]


@router.get(
    "/readyz",
    response_model=Ready,
    responses=problem_responses(
        {503: "not ready: the database does not answer, or its schema is not this version's"}
    ),
)
async def readyz(request: Request) -> object:
    """Ready to serve: the database answers within two seconds and its migrations are this
    version's."""
    check: ReadinessCheck = request.app.state.readiness
    found = await check.check()
    if not found.ready:
        return problem(503, found.reason, slug="not-ready")
    return {"status": "ready"}


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(require(Role.VIEWER))],
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    """This process's metrics in the Prometheus text format (docs/operations.md)."""
    registry: Metrics = request.app.state.metrics
    return Response(await registry.exposition(), media_type=CONTENT_TYPE)
