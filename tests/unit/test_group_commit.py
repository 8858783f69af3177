"""The group commit on its own: grouping, order, per-unit failures, weights, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from smsbridge.services.group_commit import GroupCommit


class Recorder:
    """A write that records its groups; a unit named ``bad`` makes its whole group fail, a
    unit named ``refused`` is refused alone (an outcome, not a failed group)."""

    def __init__(self, pause: float = 0.01) -> None:
        self.groups: list[list[str]] = []
        self.committed: list[str] = []
        self.pause = pause

    async def write(self, units: Sequence[str]) -> list[str | BaseException]:
        self.groups.append(list(units))
        await asyncio.sleep(self.pause)
        if "bad" in units:
            raise RuntimeError("the transaction failed")
        self.committed.extend(u for u in units if u != "refused")
        return [ValueError(u) if u == "refused" else u.upper() for u in units]


async def test_concurrent_units_share_groups_and_each_gets_its_own_outcome() -> None:
    recorder = Recorder()
    group: GroupCommit[str, str] = GroupCommit(recorder.write, name="test")
    results = await asyncio.gather(*(group.submit(f"u{i}") for i in range(50)))
    assert results == [f"U{i}" for i in range(50)]
    assert sorted(recorder.committed) == sorted(f"u{i}" for i in range(50))
    # the first unit goes alone (nothing waited with it); the rest arrived while it committed
    assert len(recorder.groups) < 5
    assert [u for g in recorder.groups for u in g] == [f"u{i}" for i in range(50)]
    assert (group.groups, group.units) == (len(recorder.groups), 50)
    await group.close()


async def test_a_failing_group_is_written_again_unit_by_unit() -> None:
    recorder = Recorder()
    group: GroupCommit[str, str] = GroupCommit(recorder.write, name="test")
    first = asyncio.ensure_future(group.submit("first"))
    await asyncio.sleep(0)  # "first" alone in flight; the next three wait together
    rest = [asyncio.ensure_future(group.submit(u)) for u in ("a", "bad", "refused", "b")]
    assert await first == "FIRST"
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert outcomes[0] == "A" and outcomes[3] == "B"
    assert isinstance(outcomes[1], RuntimeError)
    assert isinstance(outcomes[2], ValueError)
    assert recorder.groups[1] == ["a", "bad", "refused", "b"]
    assert recorder.groups[2:] == [["a"], ["bad"], ["refused"], ["b"]]
    assert sorted(recorder.committed) == ["a", "b", "first"]
    await group.close()


async def test_a_group_never_exceeds_its_weight_but_a_heavy_unit_still_goes() -> None:
    recorder = Recorder()
    group: GroupCommit[str, str] = GroupCommit(recorder.write, name="test", max_weight=10)
    first = asyncio.ensure_future(group.submit("first"))
    await asyncio.sleep(0)
    units = [("x1", 4), ("x2", 4), ("x3", 4), ("huge", 25), ("x4", 1)]
    waiting = [asyncio.ensure_future(group.submit(u, weight=w)) for u, w in units]
    await first
    await asyncio.gather(*waiting)
    assert recorder.groups[1:] == [["x1", "x2"], ["x3"], ["huge"], ["x4"]]
    await group.close()


async def test_a_caller_that_stops_waiting_does_not_undo_its_write() -> None:
    recorder = Recorder(pause=0.05)
    group: GroupCommit[str, str] = GroupCommit(recorder.write, name="test")
    waiting = asyncio.ensure_future(group.submit("gone"))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await group.submit("next") == "NEXT"
    assert recorder.committed == ["gone", "next"]
    await group.close()


async def test_close_writes_what_waits_then_refuses_new_units() -> None:
    recorder = Recorder()
    group: GroupCommit[str, str] = GroupCommit(recorder.write, name="test", parallel=3)
    pending = [asyncio.ensure_future(group.submit(f"u{i}")) for i in range(7)]
    await asyncio.sleep(0)
    await group.close()
    assert [await p for p in pending] == [f"U{i}" for i in range(7)]
    with pytest.raises(RuntimeError):
        await group.submit("late")
