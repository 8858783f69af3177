"""docs/grafana-dashboard.json is a dashboard Grafana imports, and every query in it (and in
docs/operations.md's alerts) names only metrics smsbridge exports."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smsbridge.observability.gauges import DatabaseGauges, WorkerGauges
from smsbridge.observability.metrics import Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"\bsmsbridge_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names(*, families_too: bool = False) -> set[str]:
    """The sample names a process's registry can expose (its collectors described); with
    ``families_too``, the names of their families as well (a histogram's, in prose)."""
    metrics = Metrics()
    gauges = DatabaseGauges(db=None, clock=lambda: datetime.now(UTC))  # type: ignore[arg-type]
    families = [
        *metrics.registry.collect(),
        *gauges.describe(),
        *WorkerGauges(list).describe(),
    ]
    names = {f.name + suffix for f in families for suffix in SUFFIXES[f.type]}
    return names | {f.name for f in families} if families_too else names


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    found += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


def test_the_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["title"] and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    known = exported_names()
    used: set[str] = set()
    for expr in _expressions(dashboard):
        names = set(NAME.findall(expr))
        assert names, f"no smsbridge metric in {expr!r}"
        assert names <= known, f"unknown metrics {names - known} in {expr!r}"
        used |= names
    assert "smsbridge_provider_latency_seconds_bucket" in used
    assert "smsbridge_outbox_oldest_due_age_seconds" in used


def test_the_operations_guide_alerts_on_exported_metrics() -> None:
    guide = (DOCS / "operations.md").read_text(encoding="utf-8")
    names = set(NAME.findall(guide))
    assert "smsbridge_breaker_state" in names
    known = exported_names(families_too=True)
    assert names <= known, f"docs/operations.md names unknown metrics: {names - known}"
