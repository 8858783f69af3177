"""The browser tests' fixtures: the admin served on loopback (``site`` without a worker,
``live_site`` with the worker and campaign runner in-process, as ``smsbridge serve`` runs them)
and Debian's Chromium driven by Playwright (``browser``). Without Chromium the tests skip, on
a laptop; with ``CI=true`` they fail instead (``.ci/run`` installs it)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.e2e.harness import CHROMIUM, Site, serve


def _playwright() -> Any:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if IN_CI:
            pytest.fail(f"CI=true but {CHROMIUM} is missing (.ci/run installs it)", pytrace=False)
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    return pytest.importorskip("playwright.async_api")


@pytest.fixture
async def site(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    """The admin without a worker: tests drive delivery themselves."""
    async with serve(sqlite_url, tmp_path, run_worker=False) as served:
        yield served


@pytest.fixture
async def live_site(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    """The admin as ``smsbridge serve`` runs it: worker and campaign runner in-process."""
    async with serve(sqlite_url, tmp_path, run_worker=True) as served:
        yield served


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    playwright_api = _playwright()
    async with playwright_api.async_playwright() as driver:
        launched = await driver.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            await launched.close()
