"""Conformance tests prove wire formats, not storage: one database (SQLite) is enough, which
keeps the suite to seconds. Storage behaviour is proven on both dialects in tests/integration."""

from __future__ import annotations

import pytest


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url
