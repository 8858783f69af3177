"""``smsbridge serve``, ``smsbridge worker`` and ``smsbridge migrate``: the long-running
processes and the schema they need."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket

import typer

from smsbridge import __version__, process_tuning
from smsbridge.cli.common import err, load_settings, migrate_sqlite, out, run_with
from smsbridge.config import Settings
from smsbridge.container import Services
from smsbridge.observability.exposition import MetricsServer
from smsbridge.observability.logs import configure_logging
from smsbridge.storage.database import migrates_itself


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Do not run the in-process delivery worker."
    ),
) -> None:
    """Run the API and admin UI (applies migrations itself on SQLite).

    Webhook URLs, short links and the sandbox's delivery reports point at SMSBRIDGE_PUBLIC_URL;
    when it is not set, at this server's own --host and --port."""
    # Imported here, not at the top: the web stack and the server take about a second and a
    # half to load, which every other command would pay (not a cycle: cli sits above app).
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from smsbridge.api import access_log
    from smsbridge.app import create_app

    listening = _listen(host, port)  # first: a taken port is the only thing said
    settings, generated = load_settings()
    derived = "public_url" not in settings.model_fields_set
    if derived:
        settings = settings.model_copy(update={"public_url": own_url(host, port)})
    if migrates_itself(settings.database_url):
        migrate_sqlite(settings)
    set_up_logging(settings)
    url = f"http://{_shown_host(host)}:{port}"
    out.print(f"[bold green]smsbridge {__version__}[/] on {url}")
    out.print(f"  admin UI:  {url}/admin")
    out.print(f"  API docs:  {url}/docs")
    if derived:
        out.print(
            f"  public URL: {settings.public_url} (this server's address; set "
            "SMSBRIDGE_PUBLIC_URL to the one providers and phones reach)"
        )
    else:
        out.print(f"  public URL: {settings.public_url} (SMSBRIDGE_PUBLIC_URL)")
    if generated.admin_key_file is not None and settings.admin_key is not None:
        out.print(f"  admin key: {settings.admin_key.get_secret_value()}")
        out.print(f"             (kept in {generated.admin_key_file}, mode 0600)")
    else:
        out.print("  admin key: the value of SMSBRIDGE_ADMIN_KEY")
    if no_worker:
        out.print("  worker:    disabled (--no-worker); run `smsbridge worker` elsewhere")
    if settings.metrics_listen:
        out.print(
            f"  metrics:   http://{settings.metrics_listen}/metrics (no key: keep it private)"
        )
    access_log.install()
    config = uvicorn.Config(
        create_app(settings, run_worker=not no_worker, settle=True),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        # JSON lines: uvicorn's loggers write through the root handler, not their own
        log_config=None if settings.log_format == "json" else LOGGING_CONFIG,
    )
    uvicorn.Server(config).run(sockets=[listening])


def set_up_logging(settings: Settings) -> None:
    """The one logging set-up of the long-running commands (SMSBRIDGE_LOG_LEVEL and
    SMSBRIDGE_LOG_FORMAT)."""
    configure_logging(settings.log_level, settings.log_format)


def _shown_host(host: str) -> str:
    """Where a browser on this machine reaches a server listening on ``host``."""
    if host in ("0.0.0.0", "", "::"):  # noqa: S104 - naming the wildcard, not binding it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def own_url(host: str, port: int) -> str:
    """The public URL of a server listening on ``host``:``port``, when none is configured."""
    return f"http://{_shown_host(host)}:{port}"


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else happens; a one-line error when the
    address is taken or cannot be used."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            err.print(
                f"[red]error:[/] port {port} on {host} is already in use (another smsbridge, or "
                "another program); choose another with --port"
            )
        else:
            err.print(f"[red]error:[/] cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def worker(
    concurrency: int | None = typer.Option(
        None,
        help="Sends in flight per credential to start with (default 64); each credential's "
        "limit then follows its provider's latency, up to SMSBRIDGE_WORKER_MAX_CONCURRENCY.",
    ),
    metrics_port: int | None = typer.Option(
        None,
        min=0,
        max=65535,
        help="Serve this worker's Prometheus metrics at /metrics on this port (no API key).",
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1", help="Interface of --metrics-port (keep it off public networks)."
    ),
) -> None:
    """Run a delivery worker (and campaign fan-outs) alone: as many as you like, on any host
    sharing the database."""
    settings, _ = load_settings()
    if migrates_itself(settings.database_url):
        migrate_sqlite(settings)
    set_up_logging(settings)

    async def main(services: Services) -> None:
        delivery = (
            services.new_worker(concurrency=concurrency) if concurrency else services.new_worker()
        )
        runner = services.new_campaign_runner()
        events = services.new_event_dispatcher()
        process_tuning.settle()

        def stop() -> None:
            delivery.stop()
            runner.stop()
            events.stop()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop)
        exposed = await _serve_metrics(services, metrics_host, metrics_port)
        out.print(f"worker {delivery.name} running; SIGTERM or Ctrl-C stops it gracefully")
        try:
            await asyncio.gather(delivery.run(), runner.run(), events.run())
        finally:
            if exposed is not None:
                await exposed.stop()

    run_with(main, migrate=False)


async def _serve_metrics(services: Services, host: str, port: int | None) -> MetricsServer | None:
    """The worker's /metrics listener, when --metrics-port asks for one."""
    if port is None:
        return None
    exposed = MetricsServer(services.metrics, host, port)
    try:
        await exposed.start()
    except OSError as exc:
        err.print(f"[red]error:[/] cannot serve metrics on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    out.print(f"  metrics:   http://{_shown_host(host)}:{exposed.port}/metrics")
    return exposed


def migrate() -> None:
    """Apply database migrations (PostgreSQL needs this; SQLite is migrated by serve)."""
    settings, _ = load_settings()
    migrate_sqlite(settings)
    out.print("database is up to date")
