"""Identifiers: time-sortable, unique, their random bits drawn from the operating system's
CSPRNG in blocks (one system call per block, not per id) — never shared with a forked child."""

from __future__ import annotations

import os
import time

from smsbridge.domain import ids
from smsbridge.domain.ids import _ALPHABET, new_id, new_ids


def test_ids_are_unique_and_sort_by_creation_time() -> None:
    drawn = [new_id("msg") for _ in range(50_000)]  # ~100 blocks of random bits
    assert len(set(drawn)) == len(drawn)
    assert all(len(i) == 4 + 26 and set(i[4:]) <= set(_ALPHABET) for i in drawn)
    earlier = new_id("msg", now_ms=int(time.time() * 1000) - 1000)
    assert earlier < drawn[0]
    assert len(set(new_ids("msg", 1000))) == 1000


def test_random_bits_come_in_blocks_and_vary() -> None:
    ids._forget_pool()
    first = ids._random80()
    assert len(ids._pool) == 10 * ids._DRAWN_AT_ONCE and ids._taken == 10
    rest = {ids._random80() for _ in range(ids._DRAWN_AT_ONCE * 3)}
    assert first not in rest and len(rest) == ids._DRAWN_AT_ONCE * 3
    assert all(0 <= value < 2**80 for value in rest)


def test_a_forked_child_never_hands_out_its_parents_bits() -> None:
    ids._forget_pool()
    ids._random80()  # the parent now holds a block of unused bits
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next draw, to the parent
        try:
            os.write(writer, ids._random80().to_bytes(10, "big"))
        finally:
            os._exit(0)
    os.close(writer)
    from_child = int.from_bytes(os.read(reader, 10), "big")
    os.close(reader)
    os.waitpid(child, 0)
    assert from_child != ids._random80()  # the parent's next draw is its own
