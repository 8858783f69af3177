"""The fault suite: processes killed, database connections cut, a misbehaving provider,
webhooks replayed and reordered; each test ends by checking the same invariants
(:mod:`tests.faults.invariants`). Runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from tests.workers import processes

__all__ = ["processes"]
