"""The ``smsbridge`` command line, assembled: one module per command group.

:mod:`~smsbridge.cli.server` (serve, worker, migrate), :mod:`~smsbridge.cli.send`,
:mod:`~smsbridge.cli.keys`, :mod:`~smsbridge.cli.credentials`, :mod:`~smsbridge.cli.profiles`,
:mod:`~smsbridge.cli.campaigns`, :mod:`~smsbridge.cli.demo` and :mod:`~smsbridge.cli.report`;
what they share (consoles, settings, running with the services) is :mod:`~smsbridge.cli.common`.
"""

from __future__ import annotations

import sys

import typer

from smsbridge import __version__
from smsbridge.cli import campaigns, credentials, demo, keys, profiles, report, send, server
from smsbridge.cli.common import out

app = typer.Typer(
    help="smsbridge: send SMS through any HTTP SMS provider.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Registration order is the order ``smsbridge --help`` lists them in.
for command in (
    demo.demo,
    report.report,
    server.serve,
    server.worker,
    send.send,
    send.send_batch,
    server.migrate,
):
    app.command()(command)
app.add_typer(keys.keys_app, name="keys")
app.add_typer(credentials.credentials_app, name="credentials")
app.add_typer(profiles.profiles_app, name="profiles")
app.add_typer(campaigns.campaigns_app, name="campaigns")


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        out.print(f"smsbridge {__version__}")
        raise typer.Exit()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
