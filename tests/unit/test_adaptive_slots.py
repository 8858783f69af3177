"""Send slots: per-credential lines under adaptive limits, a global cap, stopping, logging.

Driven on the event loop with a hand-moved clock; no I/O.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from smsbridge.delivery.adaptive import MIN_WINDOW, ChangeLog
from smsbridge.delivery.send_slots import SendingStopped, SendSlots, Slot
from smsbridge.delivery.senders import SenderPool
from smsbridge.domain.retry import Outcome, OutcomeKind


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def slots(initial: int = 2, cap: int = 100, clock: Clock | None = None) -> SendSlots:
    return SendSlots(initial=initial, cap=cap, clock=clock or Clock())


async def waiting(task: asyncio.Task[Slot]) -> bool:
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return not task.done()


async def test_a_credential_past_its_limit_waits_first_come_first_served() -> None:
    send = slots(initial=2)
    first, second = await send.acquire("a"), await send.acquire("a")
    third = asyncio.create_task(send.acquire("a"))
    fourth = asyncio.create_task(send.acquire("a"))
    assert await waiting(third)
    assert await waiting(fourth)
    assert send.waiting == 2
    send.release(first)
    assert (await third).key == "a"
    assert await waiting(fourth)
    send.release(second)
    await fourth
    assert send.waiting == 0


async def test_one_credential_full_does_not_hold_up_another() -> None:
    send = slots(initial=1)
    await send.acquire("a")
    blocked = asyncio.create_task(send.acquire("a"))
    assert await waiting(blocked)
    other = await asyncio.wait_for(send.acquire("b"), 10)
    assert other.key == "b"
    blocked.cancel()


async def test_all_credentials_together_stay_under_the_cap() -> None:
    send = slots(initial=2, cap=3)
    held = [await send.acquire("a"), await send.acquire("a"), await send.acquire("b")]
    over = asyncio.create_task(send.acquire("b"))  # b has room, the worker has not
    assert await waiting(over)
    send.release(held[0])
    assert (await over).key == "b"


async def test_stopping_gives_waiting_senders_their_message_back() -> None:
    send = slots(initial=1)
    await send.acquire("a")
    blocked = asyncio.create_task(send.acquire("a"))
    assert await waiting(blocked)
    send.close()
    with pytest.raises(SendingStopped):
        await blocked
    with pytest.raises(SendingStopped):
        await send.acquire("b")


async def test_a_cancelled_waiter_takes_no_slot_with_it() -> None:
    send = slots(initial=1)
    held = await send.acquire("a")
    gone = asyncio.create_task(send.acquire("a"))
    assert await waiting(gone)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    send.release(held)
    again = await asyncio.wait_for(send.acquire("a"), 10)  # the slot went nowhere
    assert again.key == "a"
    assert send.waiting == 0


async def answer_a_window(send: SendSlots, clock: Clock, key: str, latency: float) -> None:
    """One window's worth of sends through ``key``, all answered after ``latency``."""
    first = await send.acquire(key)
    limit = send.limits()[key]
    held = [first, *[await send.acquire(key) for _ in range(limit - 1)]]
    clock.now += latency
    for slot in held[-max(MIN_WINDOW, limit // 2) :]:  # the limit full when they left
        slot.latency = latency
    for slot in held:
        send.release(slot)
    clock.now += 0.001


async def test_limits_grow_with_clean_answers_and_are_readable() -> None:
    clock = Clock()
    send = SendSlots(initial=32, cap=1000, clock=clock)
    assert send.limits() == {}
    send.release(await send.acquire("a"))  # known from its first send
    assert send.limits() == {"a": 32}
    for _ in range(2):
        await answer_a_window(send, clock, "a", 0.2)
    assert send.limits()["a"] == 512
    assert send.total_limit == 512


async def test_a_growing_limit_lets_waiting_senders_through() -> None:
    clock = Clock()
    send = SendSlots(initial=16, cap=1000, clock=clock)
    held = [await send.acquire("a") for _ in range(16)]
    queued = [asyncio.create_task(send.acquire("a")) for _ in range(8)]
    assert await waiting(queued[0])
    clock.now += 0.2
    for slot in held:  # a clean, full window: the limit grows
        slot.latency = 0.2
        send.release(slot)
    await asyncio.wait_for(asyncio.gather(*queued), 10)
    assert send.limits()["a"] == 64


async def test_push_back_cuts_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    send = SendSlots(initial=40, cap=1000, clock=clock)
    held = [await send.acquire("cred_x") for _ in range(2)]
    clock.now += 0.2
    with caplog.at_level(logging.INFO, logger="smsbridge.worker"):
        for slot in held:
            slot.overload = "429"
            send.release(slot)
    assert send.limits()["cred_x"] == 28  # x 0.7 while no latency is known
    assert (
        "credential cred_x send concurrency 40 → 28 (provider pushed back: 429, 100% of answers"
        in caplog.text
    )


async def test_changes_are_logged_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    changes = ChangeLog(interval=5.0, threshold=0.25)
    send = SendSlots(initial=16, cap=10_000, clock=clock, changes=changes)
    with caplog.at_level(logging.INFO, logger="smsbridge.worker"):
        for _ in range(3):  # 16 → 64 → 256 → 1024 within a second or so
            await answer_a_window(send, clock, "cred_y", 0.2)
        lines = [r.getMessage() for r in caplog.records if "send concurrency" in r.message]
        assert lines == ["credential cred_y send concurrency 16 → 64 (latency-bound, p50 200 ms)"]
        clock.now += 5
        await answer_a_window(send, clock, "cred_y", 0.2)  # the next answer tells it
    lines = [r.getMessage() for r in caplog.records if "send concurrency" in r.message]
    assert len(lines) == 2
    assert lines[1].startswith("credential cred_y send concurrency 64 → 1024 (")  # held back


@pytest.mark.parametrize(
    ("outcome", "overload", "latency"),
    [
        (Outcome(OutcomeKind.ACCEPTED, status=200), "", 0.25),
        (Outcome(OutcomeKind.REJECTED, status=400), "", 0.25),
        (Outcome(OutcomeKind.REJECTED, status=429), "429", None),
        (Outcome(OutcomeKind.REJECTED, status=503), "503", None),
        (Outcome(OutcomeKind.AMBIGUOUS), "timeout", None),
        (Outcome(OutcomeKind.UNREACHABLE), "no connection", None),
        (Outcome(OutcomeKind.BLOCKED), "", None),
    ],
)
def test_what_a_send_teaches(outcome: Outcome, overload: str, latency: float | None) -> None:
    slot = Slot("a", 0.0, 1)
    slot.learn(outcome, 250.0)
    assert slot.overload == overload
    assert slot.latency == latency


# --- the senders follow the limits -------------------------------------------------------------


async def test_the_sender_pool_follows_what_is_wanted_and_stops_cleanly() -> None:
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    release = asyncio.Event()
    busy: list[int] = []
    done: list[int] = []

    async def handle(work: int) -> None:
        busy.append(work)
        await release.wait()
        done.append(work)

    wanted = 3
    pool = SenderPool(queue, handle, lambda: wanted)
    for n in range(10):
        queue.put_nowait(n)
    pool.staff()
    await asyncio.sleep(0)
    assert len(pool) == 3
    assert busy == [0, 1, 2]  # three at once, in order
    wanted = 5
    pool.staff()
    await asyncio.sleep(0)
    assert len(pool) == 5
    wanted = 2
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(pool) <= 2  # the surplus retired after their sends
    await pool.stop()
    assert len(pool) == 0
    assert sorted(done) == sorted(busy)  # every send begun was finished
