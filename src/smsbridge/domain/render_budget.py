"""What one render of a message template may cost, and the costs counted before the work.

:class:`TemplateLimits` are the settings; a :class:`RenderBudget` is one render's allowance
(time to its deadline, characters of output); :func:`printed_size` and :func:`format_size`
tell, without building it, how long a value or a ``%`` formatting would print, so that
:mod:`smsbridge.domain.template_sandbox` refuses it *before* the work is done.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_INT_BITS = 4096
"""Largest integer an operator may build (about 1,230 decimal digits)."""

_FLOAT_DIGITS = 320
"""Most characters a float prints as with ``%f`` (1e308 has 309 digits)."""


@dataclass(frozen=True)
class TemplateLimits:
    """The settings ``max_template_chars``, ``max_rendered_chars``, ``template_render_seconds``."""

    max_template_chars: int = 10_000
    max_rendered_chars: int = 10_000
    render_seconds: float = 0.25

    def too_long(self, source: str) -> str | None:
        """Why ``source`` is refused before it is even parsed, or None."""
        if len(source) <= self.max_template_chars:
            return None
        return (
            f"is {len(source):,} characters; the limit is {self.max_template_chars:,} "
            "(SMSBRIDGE_MAX_TEMPLATE_CHARS)"
        )

    def over_output(self) -> str:
        return (
            f"renders more than {self.max_rendered_chars:,} characters "
            "(SMSBRIDGE_MAX_RENDERED_CHARS)"
        )


class OverLimit(Exception):
    """A render went over a limit (raised through Jinja's frames; the caller names the field)."""


class NotRendering(Exception):
    """A filter or output was asked for while compiling (Jinja folding constants): refused,
    so that it runs — and is counted — when rendering."""


class RenderBudget:
    """What one render may still spend: CPU time of its thread, and characters of output.

    The time counted is the rendering thread's CPU time, not the clock: a render that waits
    for the interpreter lock (the event loop holds it half the time) or for a busy machine is
    not refused for the wait. Reading a thread's CPU clock is a system call (~0.6 µs, a dozen
    times the clock's cost), so :meth:`tick` reads the clock, and reads the CPU clock only
    once the clock has passed the point where the whole allowance *could* have been spent —
    a thread cannot spend more CPU than time has passed.
    """

    __slots__ = ("_cpu_start", "_deadline", "_limits", "_output_left")

    def __init__(self, limits: TemplateLimits) -> None:
        self._limits = limits
        self._cpu_start = time.thread_time()
        self._deadline = time.monotonic() + limits.render_seconds
        self._output_left = limits.max_rendered_chars

    @property
    def limit(self) -> int:
        return self._limits.max_rendered_chars

    def tick(self) -> None:
        now = time.monotonic()
        if now <= self._deadline:
            return
        left = self._limits.render_seconds - (time.thread_time() - self._cpu_start)
        if left <= 0:
            raise OverLimit(
                f"takes more than {self._limits.render_seconds:g} s of CPU to render "
                "(SMSBRIDGE_TEMPLATE_RENDER_SECONDS)"
            )
        self._deadline = now + left  # the earliest the rest could be spent

    def allow(self, size: int, what: str = "a value") -> None:
        """Refuse to build ``what`` of ``size`` characters when that is over the limit."""
        limit = self._limits.max_rendered_chars
        if size > limit:
            raise OverLimit(
                f"would build {what} of {size:,} characters; the limit is {limit:,} "
                "(SMSBRIDGE_MAX_RENDERED_CHARS)"
            )

    def size_of(self, value: object) -> int:
        """``value``'s printed size, counted no further than just past the limit."""
        return printed_size(value, self._limits.max_rendered_chars)

    def check_arguments(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Collections handed to a filter or method are within the limit (they may be printed,
        joined or sorted, each element as often as a literal repeats it)."""
        for value in (*args, *kwargs.values()):
            if isinstance(value, list | tuple | dict | set | frozenset):
                self.allow(self.size_of(value), "a collection")

    def result(self, value: Any) -> Any:
        """``value``, if within the limits."""
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise OverLimit(
                f"would build an integer of {value.bit_length():,} bits; "
                f"the limit is {MAX_INT_BITS:,}"
            )
        if isinstance(value, str | list | tuple | dict | set | frozenset):
            self.allow(self.size_of(value))
        return value

    def output(self, value: Any) -> str:
        """``value`` as output text, counted against the output limit."""
        if isinstance(value, str):
            text = value
        else:
            self.allow(self.size_of(value), "output")
            text = str(value)
        self._output_left -= len(text)
        if self._output_left < 0:
            raise OverLimit(self._limits.over_output())
        return text


def printed_size(value: object, cap: int) -> int:
    """About how many characters ``value`` prints as, counted no further than past ``cap``.

    Containers count their elements each time they hold them (``[v, v, v]`` is three ``v``),
    which is what printing or joining them costs; the count stops once past ``cap``, so it
    costs at most about ``cap`` steps however much the value shares.
    """
    if isinstance(value, str):
        return len(value)
    total = 0
    pending = [value]
    while pending and total <= cap:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item) + 2
            if total <= cap:
                pending.extend(item)
        elif isinstance(item, dict):
            total += 2 * len(item) + 2
            if total <= cap:
                pending.extend(item.keys())
                pending.extend(item.values())
        else:
            total += 32
    return total


def format_size(template: str, values: object, cap: int) -> int:
    """An upper bound on the length of ``template % values``, found without formatting.

    Each conversion counts its width, its precision and the printed size of its value
    (floats: as many digits as ``%f`` may print), so ``'%999999999s'``, ``'%.999999999f'`` and
    ``'%(v)s%(v)s…'`` are all seen for what they would build.
    """
    args = values if isinstance(values, tuple) else (values,)
    mapping = values if isinstance(values, Mapping) else None
    size, used, position, end = 0, 0, 0, len(template)

    def next_value() -> object:
        nonlocal used
        used += 1
        return args[used - 1] if used <= len(args) else None

    def number(at: int) -> tuple[int, int]:
        if at < end and template[at] == "*":
            given = next_value()
            return (abs(given) if isinstance(given, int) else 0), at + 1
        start = at
        while at < end and template[at].isdigit():
            at += 1
        return (int(template[start:at]) if at > start else 0), at

    while size <= cap:
        found = template.find("%", position)
        if found < 0:
            return size + end - position
        size += found - position
        at = found + 1
        key = None
        if at < end and template[at] == "(":  # a mapping key, parentheses nest (as Python's)
            depth, start = 1, at + 1
            at += 1
            while at < end and depth:
                depth += {"(": 1, ")": -1}.get(template[at], 0)
                at += 1
            key = template[start : at - 1]
        while at < end and template[at] in "#0- +":
            at += 1
        width, at = number(at)
        precision = 0
        if at < end and template[at] == ".":
            precision, at = number(at + 1)
        while at < end and template[at] in "hlL":
            at += 1
        kind = template[at] if at < end else ""
        position = at + 1
        if kind == "%":
            size += 1
            continue
        if key is not None:
            value = mapping.get(key) if mapping is not None else None
        else:
            value = next_value()
        size += width + precision + printed_size(value, cap)
        if isinstance(value, float) or kind in "eEfFgG":
            size += _FLOAT_DIGITS
    return size
