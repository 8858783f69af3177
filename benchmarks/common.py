"""What the benchmark scripts share: settings for a throw-away instance, a free port, the
machine line every script prints first."""

from __future__ import annotations

import os
import platform
import socket
import sqlite3
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from smsbridge.config import Settings


def bench_settings(database_url: str, state: Path, **extra: object) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=SecretStr("bench-admin-key"),
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        state_dir=state,
        log_level="WARNING",
        **extra,  # type: ignore[arg-type]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def machine() -> str:
    return (
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


SANDBOX_CREDENTIAL = {
    "name": "bench",
    "provider_url": "sandbox://default",
    "auth": {"type": "none"},
    "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
}
