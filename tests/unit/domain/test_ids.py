"""Identifiers: time-sortable, unique, their random bits drawn from the operating system's
CSPRNG in blocks (one system call per block, not per id) — never shared with a forked child."""

from __future__ import annotations

import os
import signal
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


def _decoded(chars: str) -> int:
    value = 0
    for char in chars:
        value = value * 32 + _ALPHABET.index(char)
    return value


def test_the_first_ten_characters_are_the_milliseconds() -> None:
    for millis in (0, 1, 2**48 - 1, 1_764_000_000_000, 1_764_000_000_001):
        made = new_id("msg", now_ms=millis)
        assert _decoded(made[4:14]) == millis
        assert _decoded(made[4:]) >> 80 == millis  # as one 130-bit number: time, then 80 bits


def test_random_bits_come_in_blocks_and_vary() -> None:
    ids._forget_pool()
    first = ids._random_chars()
    assert len(ids._pool) == 16 * ids._DRAWN_AT_ONCE and ids._taken == 16
    rest = {ids._random_chars() for _ in range(ids._DRAWN_AT_ONCE * 3)}
    assert first not in rest and len(rest) == ids._DRAWN_AT_ONCE * 3
    assert all(len(chars) == 16 and set(chars) <= set(_ALPHABET) for chars in rest)


def test_every_character_is_as_likely() -> None:
    """Each random character takes 5 bits of a random byte: 32 characters, about as many of
    each (6,400 expected of each here; a skew of 10 % would be 8 standard deviations)."""
    drawn = "".join(ids._random_chars() for _ in range(12_800))
    counts = [drawn.count(char) for char in _ALPHABET]
    assert all(5_760 < count < 7_040 for count in counts), counts


def test_a_forked_child_never_hands_out_its_parents_bits() -> None:
    ids._forget_pool()
    ids._random_chars()  # the parent now holds a block of unused bits
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next draw, to the parent
        try:
            os.write(writer, ids._random_chars().encode())
        finally:
            os._exit(0)
    os.close(writer)
    from_child = os.read(reader, 16).decode()
    os.close(reader)
    os.waitpid(child, 0)
    assert from_child != ids._random_chars()  # the parent's next draw is its own


def test_a_fork_while_another_thread_draws_leaves_the_child_able_to_draw() -> None:
    """The lock is held (as by another thread mid-draw) at the fork: the child gets a lock of
    its own instead of a copy held forever by a thread it does not have."""
    with ids._lock:
        child = os.fork()
        if child == 0:
            signal.alarm(5)  # a deadlocked child is killed, and the test fails
            try:
                ids._random_chars()
            finally:
                os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
