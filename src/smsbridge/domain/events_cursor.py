"""Following an ordered log by id without skipping late commits.

PostgreSQL hands out autoincrement ids when rows are inserted, not when their transaction
commits: id 11 may become visible after id 12 was read (two group commits in flight). A reader
that just remembered "12" would never see 11. So the cursor also keeps the ids it has not seen
below its position, as ranges with the time they were first missed, and reads them again
until they appear or a safety delay passes (a rolled-back transaction leaves ids that never
will). On SQLite one writer commits at a time, in id order: no gap ever opens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SAFETY_SECONDS = 120.0
"""How long a missing id is waited for: far longer than any transaction that writes events."""
MAX_GAPS = 500
"""Gap ranges kept at most (the oldest are given up first, with a warning by the caller)."""


def advance(
    position: int,
    gaps: Sequence[Sequence[float]],
    seen: Iterable[int],
    now: float,
    *,
    safety: float = SAFETY_SECONDS,
    max_gaps: int = MAX_GAPS,
) -> tuple[int, list[list[float]], int]:
    """The new (position, gaps) after reading the ids ``seen`` (past ``position`` or in a
    gap), and how many ids were given up (their wait expired, or too many gaps)."""
    ids = sorted(set(seen))
    beyond = [i for i in ids if i > position]
    new_position = beyond[-1] if beyond else position
    ranges: list[list[float]] = [list(g) for g in gaps]
    # ids missing between the old position and the new one
    expected = position + 1
    for i in beyond:
        if i > expected:
            ranges.append([float(expected), float(i - 1), now])
        expected = i + 1
    # ids that filled a gap split its range
    inside = [i for i in ids if i <= position]
    if inside:
        ranges = _remove(ranges, inside)
    kept: list[list[float]] = []
    given_up = 0
    for lo, hi, since in ranges:
        if now - since > safety:
            given_up += int(hi - lo + 1)
        else:
            kept.append([lo, hi, since])
    if len(kept) > max_gaps:
        kept.sort(key=lambda g: g[2])
        for lo, hi, _ in kept[: len(kept) - max_gaps]:
            given_up += int(hi - lo + 1)
        kept = kept[len(kept) - max_gaps :]
    kept.sort(key=lambda g: g[0])
    return new_position, kept, given_up


def _remove(ranges: list[list[float]], ids: Sequence[int]) -> list[list[float]]:
    found = set(ids)
    result: list[list[float]] = []
    for lo, hi, since in ranges:
        start = int(lo)
        for i in sorted(x for x in found if lo <= x <= hi):
            if i > start:
                result.append([float(start), float(i - 1), since])
            start = i + 1
        if start <= hi:
            result.append([float(start), hi, since])
    return result
