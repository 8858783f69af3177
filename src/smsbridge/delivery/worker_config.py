"""What a delivery worker is told (:class:`WorkerConfig`), and its small pure helpers."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta


def outage_pause(failures: int) -> float:
    """Seconds to wait after ``failures`` database errors in a row: 0.25 s doubling to 8 s."""
    return float(min(8.0, 0.25 * 2 ** min(failures - 1, 5)))


@dataclass(frozen=True)
class WorkerConfig:
    batch_size: int = 200
    """Fewest messages one claim asks for (more while the send limits are high)."""
    concurrency: int = 64
    """Sends in flight per credential to start with; the least its limit falls to unless
    the provider pushes back (429, 5xx, timeouts, connection failures)."""
    max_concurrency: int = 2000
    """Sends in flight at most, per credential and in all."""
    max_in_flight: int = 1000
    """Messages in hand at most (claimed, not recorded); at least twice the send limits."""
    lease: timedelta = timedelta(seconds=60)
    poll_interval: float = 0.25
    flush_interval: float = 0.02
    flush_size: int = 500
    public_url: str = "http://127.0.0.1:8000"
    breaker_threshold: int = 5
    """Transient failures in a row that open a credential's circuit breaker."""
    breaker_cooldown: timedelta = timedelta(seconds=30)
    """How long an open breaker keeps traffic away before one probe is let through."""

    def holding(self, send_limit: int) -> tuple[int, int]:
        """``(messages one claim asks for, messages in hand at most)`` while the send limits
        allow ``send_limit`` sends at once: ``batch_size`` and ``max_in_flight`` at the
        starting concurrency; each slot beyond it adds half a message to a claim and two to
        the hand, so that a worker whose limits climbed into the thousands still holds a
        round of sends in reserve and claims in batches that keep up."""
        extra = max(0, send_limit - self.concurrency)
        return self.batch_size + extra // 2, self.max_in_flight + 2 * extra


def worker_name() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"
