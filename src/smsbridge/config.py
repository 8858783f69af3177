"""Settings, read from the environment (prefix ``SMSBRIDGE_``).

Built only by entry points (``create_app`` callers and CLI commands), never at import.
When the admin key or the secret keys are not configured, :func:`ensure_local_secrets`
generates them once into a state directory (files mode 0600) and reuses them afterwards,
so that ``make run`` works on a fresh checkout and survives restarts.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./smsbridge.db"


class Settings(BaseSettings):
    """Every setting of smsbridge; see the configuration reference in ``docs/configuration.md``."""

    model_config = SettingsConfigDict(env_prefix="SMSBRIDGE_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    admin_key: SecretStr | None = None
    secret_keys: SecretStr | None = Field(
        default=None, description="Comma-separated Fernet keys; the first one encrypts."
    )
    public_url: str = "http://127.0.0.1:8000"
    allow_private_provider_urls: bool = False
    state_dir: Path = Path(".smsbridge")
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="text, or json: one JSON object per line"
    )
    metrics_listen: str | None = Field(
        default=None,
        description="host:port serving /metrics without an API key (keep it off public networks)",
    )
    default_region: str | None = Field(
        default=None, description="ISO country code for numbers written in national format"
    )
    worker_concurrency: int = Field(
        default=64, ge=1, le=2000, description="sends in flight per credential to start with"
    )
    worker_max_concurrency: int = Field(
        default=2000, ge=1, le=100_000, description="sends in flight at most, per worker"
    )
    worker_batch_size: int = Field(default=200, ge=1, le=5000)
    worker_lease_seconds: float = Field(default=60.0, ge=5, le=3600)
    worker_poll_interval: float = Field(default=0.25, gt=0, le=60)
    worker_breaker_failures: int = Field(
        default=5, ge=1, le=1000, description="transient failures in a row that open a breaker"
    )
    worker_breaker_cooldown_seconds: float = Field(default=30.0, gt=0, le=3600)

    # Limits on what any caller can make the server hold or compute (docs/configuration.md,
    # "Limits"). Each refusal is a problem+json naming the limit.
    max_template_chars: int = Field(
        default=10_000, ge=100, le=1_000_000, description="longest message or payload template"
    )
    max_rendered_chars: int = Field(
        default=10_000,
        ge=100,
        le=10_000_000,
        description="longest text or value a template may build while rendering",
    )
    template_render_seconds: float = Field(
        default=0.25, gt=0, le=60, description="CPU time one template render may take"
    )
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="largest request body of any route but imports and webhooks",
    )
    max_import_bytes: int = Field(
        default=1024 * 1024 * 1024, ge=1024, description="largest profile import (API or admin)"
    )
    link_misses_per_minute: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="unknown short-link codes one client may try per minute (then 429)",
    )
    max_webhook_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest provider webhook body"
    )

    @field_validator("metrics_listen")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        host, _, port = value.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected host:port, e.g. 127.0.0.1:9464")
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def fernet_keys(self) -> list[str]:
        """The configured Fernet keys, first (encrypting) key first."""
        if self.secret_keys is None:
            return []
        return [k.strip() for k in self.secret_keys.get_secret_value().split(",") if k.strip()]


@dataclass(frozen=True)
class GeneratedSecrets:
    """Which secrets :func:`ensure_local_secrets` had to take from the state directory."""

    admin_key_file: Path | None
    secret_keys_file: Path | None


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value: str = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def ensure_local_secrets(settings: Settings) -> tuple[Settings, GeneratedSecrets]:
    """Fill a missing admin key / secret keys from ``settings.state_dir``, creating them once."""
    admin_file: Path | None = None
    keys_file: Path | None = None
    updates: dict[str, object] = {}
    if settings.admin_key is None:
        admin_file = settings.state_dir / "admin_key"
        updates["admin_key"] = SecretStr(
            _read_or_create(admin_file, lambda: "sbk_admin_" + secrets.token_urlsafe(32))
        )
    if not settings.fernet_keys():
        keys_file = settings.state_dir / "secret_keys"
        updates["secret_keys"] = SecretStr(
            _read_or_create(keys_file, lambda: Fernet.generate_key().decode())
        )
    if not updates:
        return settings, GeneratedSecrets(None, None)
    return settings.model_copy(update=updates), GeneratedSecrets(admin_file, keys_file)
