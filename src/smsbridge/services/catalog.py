"""The services a request handler may use, and how a handler reaches them.

The composition root (:mod:`smsbridge.container`) builds the services when the application
starts and leaves them on ``app.state.services``. Handlers in ``api/`` and ``web/`` take them
through the :func:`services` dependency, typed by :class:`ServiceCatalog`: they never import
the composition root, which sits above them (imports point downward; docs/architecture.md).
Tests replace the services by handing ``create_app`` their own container.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from starlette.requests import HTTPConnection

from smsbridge.config import Settings
from smsbridge.services.api_keys import ApiKeyService
from smsbridge.services.campaigns import CampaignService
from smsbridge.services.consent import ConsentService
from smsbridge.services.credentials import CredentialService
from smsbridge.services.events import EventEndpointService
from smsbridge.services.inbound import InboundService
from smsbridge.services.links import LinkService
from smsbridge.services.messages import MessageService
from smsbridge.services.profiles import ProfileService
from smsbridge.services.reports import ReportService
from smsbridge.services.secretbox import SecretBox
from smsbridge.services.surfaces import SurfaceService
from smsbridge.services.webhooks import WebhookService
from smsbridge.storage.database import Database


class ServiceCatalog(Protocol):
    """What handlers use of the built services (:class:`smsbridge.container.Services` is one)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def box(self) -> SecretBox: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def api_keys(self) -> ApiKeyService: ...
    @property
    def credentials(self) -> CredentialService: ...
    @property
    def surfaces(self) -> SurfaceService: ...
    @property
    def messages(self) -> MessageService: ...
    @property
    def profiles(self) -> ProfileService: ...
    @property
    def campaigns(self) -> CampaignService: ...
    @property
    def links(self) -> LinkService: ...
    @property
    def consent(self) -> ConsentService: ...
    @property
    def webhooks(self) -> WebhookService: ...
    @property
    def inbound(self) -> InboundService: ...
    @property
    def reports(self) -> ReportService: ...
    @property
    def events(self) -> EventEndpointService: ...


def catalog_of(connection: HTTPConnection) -> ServiceCatalog:
    """The services of the application serving ``connection``."""
    found: ServiceCatalog = connection.app.state.services
    return found


async def services(connection: HTTPConnection) -> ServiceCatalog:
    """The dependency handlers declare (``svc: ServiceCatalog = Depends(services)``).

    ``async`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a
    thread hop (and a wait for a free thread) on every request."""
    return catalog_of(connection)
