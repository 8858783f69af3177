"""SQLite's one writer taken in turns: urgent writes (a client waits) first, background work
(claims, completions) never starved."""

from __future__ import annotations

import asyncio

import pytest

from smsbridge.storage.database import WriteTurns


async def _take(turns: WriteTurns, name: str, urgent: bool, order: list[str]) -> None:
    async with turns.turn(urgent=urgent):
        order.append(name)
        await asyncio.sleep(0)


async def test_urgent_writes_go_first_but_background_work_still_gets_turns() -> None:
    turns = WriteTurns()
    order: list[str] = []
    async with turns.turn(urgent=False):  # the worker is writing
        waiting = [
            asyncio.ensure_future(_take(turns, name, name.startswith("u"), order))
            for name in ("b1", "b2", "u1", "u2", "u3", "u4", "b3")
        ]
        await asyncio.sleep(0)
    await asyncio.gather(*waiting)
    # two urgent turns, then the oldest background one, and so on
    assert order == ["u1", "u2", "b1", "u3", "u4", "b2", "b3"]


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    turns = WriteTurns()
    order: list[str] = []
    async with turns.turn(urgent=False):
        gone = asyncio.ensure_future(_take(turns, "gone", True, order))
        stays = asyncio.ensure_future(_take(turns, "stays", False, order))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
    await stays
    assert order == ["stays"]
    async with turns.turn(urgent=True):  # free again
        order.append("after")
    assert order == ["stays", "after"]
