"""The composition root: the object graph built from settings (and torn down).

Only entry points call :func:`build_services` (``create_app``'s lifespan, CLI commands, tests,
benchmarks). Request handlers never import this module: they reach the services through the
``services`` dependency, typed by :class:`smsbridge.services.catalog.ServiceCatalog`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from smsbridge.config import Settings
from smsbridge.delivery.events import (
    EventDispatchConfig,
    EventDispatcher,
    EventSigner,
    EventTransport,
)
from smsbridge.delivery.gateway import ProviderGateway
from smsbridge.delivery.http import CallbackPoster, HttpTransport, connection_budget
from smsbridge.delivery.ratelimit import SharedRateLimiter
from smsbridge.delivery.sandbox import Poster, SandboxProvider
from smsbridge.delivery.worker import Worker, WorkerConfig
from smsbridge.domain.events import secret_from_key
from smsbridge.domain.personalize import Personalizer
from smsbridge.domain.render_budget import TemplateLimits
from smsbridge.domain.retry import RetryPolicy
from smsbridge.errors import ConfigurationError
from smsbridge.observability.gauges import DatabaseGauges, WorkerGauges
from smsbridge.observability.metrics import Metrics
from smsbridge.services.api_keys import ApiKeyService
from smsbridge.services.campaign_runner import CampaignRunner
from smsbridge.services.campaigns import CampaignService
from smsbridge.services.consent import ConsentService
from smsbridge.services.cpu_lane import CpuLane
from smsbridge.services.credentials import CredentialService
from smsbridge.services.events import EventEndpointService
from smsbridge.services.fanout import FanOut
from smsbridge.services.inbound import InboundService
from smsbridge.services.links import LinkService
from smsbridge.services.messages import MessageService
from smsbridge.services.profiles import ProfileService
from smsbridge.services.reports import ReportService
from smsbridge.services.secretbox import SecretBox
from smsbridge.services.surfaces import SurfaceService
from smsbridge.services.webhooks import WebhookService
from smsbridge.storage.database import Database, create_engine


def utc_now() -> datetime:
    return datetime.now(UTC)


class _WakeSignal:
    """Calls its targets; lets services built before the workers wake them later."""

    def __init__(self) -> None:
        self.targets: list[Callable[[], None]] = []

    def __call__(self) -> None:
        for target in self.targets:
            target()


@dataclass
class Services:
    settings: Settings
    db: Database
    transport: HttpTransport
    gateway: ProviderGateway
    sandbox: SandboxProvider
    callbacks: CallbackPoster
    box: SecretBox
    api_keys: ApiKeyService
    credentials: CredentialService
    surfaces: SurfaceService
    messages: MessageService
    profiles: ProfileService
    campaigns: CampaignService
    fanout: FanOut
    links: LinkService
    consent: ConsentService
    webhooks: WebhookService
    inbound: InboundService
    reports: ReportService
    limiter: SharedRateLimiter
    clock: Callable[[], datetime]
    cpu: CpuLane
    metrics: Metrics
    events: EventEndpointService
    event_transport: EventTransport
    workers: list[Worker] = field(default_factory=list)
    runners: list[CampaignRunner] = field(default_factory=list)
    dispatchers: list[EventDispatcher] = field(default_factory=list)

    def new_worker(
        self,
        *,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        **overrides: object,
    ) -> Worker:
        """A worker on these services; in-process enqueues wake it at once. ``overrides``
        replace :class:`WorkerConfig` fields; ``policy`` the retry policy and ``rng`` its
        jitter (tests)."""
        settings = self.settings
        config = WorkerConfig(
            batch_size=settings.worker_batch_size,
            concurrency=settings.worker_concurrency,
            max_concurrency=connection_budget(settings.worker_max_concurrency),
            lease=timedelta(seconds=settings.worker_lease_seconds),
            poll_interval=settings.worker_poll_interval,
            public_url=settings.public_url,
            breaker_threshold=settings.worker_breaker_failures,
            breaker_cooldown=timedelta(seconds=settings.worker_breaker_cooldown_seconds),
        )
        if overrides:
            config = replace(config, **overrides)  # type: ignore[arg-type]
        worker = Worker(
            db=self.db,
            credentials=self.credentials,
            gateway=self.gateway,
            limiter=self.limiter,
            clock=self.clock,
            config=config,
            policy=policy or RetryPolicy(),
            rng=rng,
            metrics=self.metrics,
        )
        self.workers.append(worker)
        return worker

    def new_event_dispatcher(self, **overrides: object) -> EventDispatcher:
        """The dispatcher of signed events (docs/events.md), run beside a delivery worker;
        ``overrides`` replace :class:`EventDispatchConfig` fields (tests)."""
        timeout = EventDispatchConfig.timeout
        lease = timedelta(seconds=max(self.settings.worker_lease_seconds, 2 * timeout))
        config = replace(EventDispatchConfig(lease=lease), **overrides)  # type: ignore[arg-type]
        dispatcher = EventDispatcher(
            db=self.db,
            transport=self.event_transport,
            signer=EventSigner(self.box.open, self.events.callback_secrets()),
            clock=self.clock,
            config=config,
            on_outcome=self.metrics.event_delivered,
            sends=lambda: sum(worker.sent for worker in self.workers),
        )
        self.dispatchers.append(dispatcher)
        return dispatcher

    def new_campaign_runner(self, *, poll_interval: float | None = None) -> CampaignRunner:
        """A runner for campaign fan-outs; launches in this process wake it at once."""
        runner = CampaignRunner(
            self.db,
            self.fanout,
            clock=self.clock,
            poll_interval=poll_interval or max(self.settings.worker_poll_interval, 1.0),
        )
        self.runners.append(runner)
        return runner

    def wake_workers(self) -> None:
        for worker in self.workers:
            worker.wake()

    def wake_runners(self) -> None:
        for runner in self.runners:
            runner.wake()

    async def close(self) -> None:
        await self.messages.close()
        await self.webhooks.close()
        await self.inbound.close()
        self.cpu.close()
        await self.sandbox.close()
        await self.callbacks.close()
        await self.transport.close()
        await self.event_transport.close()
        await self.metrics.close()
        await self.db.dispose()


async def build_services(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    sandbox_report: Poster | None = None,
    transport: HttpTransport | None = None,
) -> Services:
    """The object graph; ``sandbox_report`` replaces how the sandbox provider posts its
    delivery reports (by default: HTTP to the message's status callback URL), ``transport``
    the outbound provider transport (by default: SSRF-guarded per the settings); the services
    own and close it."""
    if settings.admin_key is None:
        raise ConfigurationError("SMSBRIDGE_ADMIN_KEY is not set")
    box = SecretBox(settings.fernet_keys())
    db = Database(create_engine(settings.database_url))
    metrics = Metrics()  # this process's own registry (docs/operations.md)
    database_gauges = DatabaseGauges(db, clock=clock)
    metrics.register(database_gauges, refresher=database_gauges)
    if transport is None:
        transport = HttpTransport.create(allow_private=settings.allow_private_provider_urls)
    callbacks = CallbackPoster()
    event_transport = EventTransport(allow_private=settings.allow_private_provider_urls)
    event_signer = EventSigner(
        box.open, [secret_from_key(key) for key in box.derive_each("event callbacks")]
    )
    events = EventEndpointService(
        db,
        box,
        clock=clock,
        allow_private_urls=settings.allow_private_provider_urls,
        attempts=EventDispatcher(  # posts test events at once; never runs its loops
            db=db,
            transport=event_transport,
            signer=event_signer,
            clock=clock,
            on_outcome=metrics.event_delivered,
        ),
        signer=event_signer,
    )
    sandbox = SandboxProvider(report=sandbox_report or callbacks)
    gateway = ProviderGateway(transport, sandbox, clock=clock)
    wake = _WakeSignal()
    launched = _WakeSignal()
    cpu = CpuLane()
    personalizer = Personalizer(
        TemplateLimits(
            max_template_chars=settings.max_template_chars,
            max_rendered_chars=settings.max_rendered_chars,
            render_seconds=settings.template_render_seconds,
        )
    )
    credentials = CredentialService(
        db,
        box,
        gateway,
        allow_private_urls=settings.allow_private_provider_urls,
        clock=clock,
    )
    services = Services(
        settings=settings,
        db=db,
        transport=transport,
        gateway=gateway,
        sandbox=sandbox,
        callbacks=callbacks,
        box=box,
        api_keys=ApiKeyService(db, settings.admin_key.get_secret_value(), clock),
        credentials=credentials,
        surfaces=SurfaceService(db, public_url=settings.public_url, clock=clock),
        messages=MessageService(
            db,
            clock=clock,
            personalizer=personalizer,
            public_url=settings.public_url,
            default_region=settings.default_region,
            on_enqueued=wake,
            cpu=cpu,
            allow_private_urls=settings.allow_private_provider_urls,
        ),
        profiles=ProfileService(db, clock=clock, default_region=settings.default_region, cpu=cpu),
        campaigns=CampaignService(
            db, clock=clock, personalizer=personalizer, on_launch=launched, cpu=cpu
        ),
        fanout=FanOut(
            db,
            clock=clock,
            personalizer=personalizer,
            public_url=settings.public_url,
            on_enqueued=wake,
            metrics=metrics,
        ),
        links=LinkService(db, box, clock=clock, misses_per_minute=settings.link_misses_per_minute),
        consent=ConsentService(db, clock=clock, default_region=settings.default_region),
        webhooks=WebhookService(db, credentials, clock=clock, metrics=metrics),
        inbound=InboundService(
            db,
            credentials,
            clock=clock,
            default_region=settings.default_region,
            on_enqueued=wake,
            metrics=metrics,
        ),
        reports=ReportService(db, clock=clock),
        limiter=SharedRateLimiter(db, metrics=metrics),
        clock=clock,
        cpu=cpu,
        metrics=metrics,
        events=events,
        event_transport=event_transport,
    )
    metrics.register(WorkerGauges(lambda: services.workers))
    wake.targets.append(services.wake_workers)
    launched.targets.append(services.wake_runners)
    return services
