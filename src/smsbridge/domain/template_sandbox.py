"""The sandbox message templates render in, and what one render may cost.

A template is short (``max_template_chars``) and has no loops, yet one expression can still
ask for hours or gigabytes: ``((10**64)**64)**64``, ``'x'.ljust(10**9)``,
``'%999999999s' % 1``, ``[v, v, v, …] | join``. So every operator, filter, method call,
concatenation (``~``) and output goes through the render's :class:`RenderBudget`, which
refuses — *before* the work is done — any value over ``max_rendered_chars`` characters (an
integer over :data:`MAX_INT_BITS` bits), output past ``max_rendered_chars`` in all, and work
past the render's deadline (``render_seconds``, checked at each of those steps: with no
loops, the work between two steps is bounded by the template's length).

Only what a message needs is there: the filters in :data:`ALLOWED_FILTERS` (no ``indent``,
``wordwrap``, ``batch``, ``tojson`` …), no globals (``range``, ``lipsum``, ``cycler``,
``dict`` …), and read-only methods of text, lists and dicts (:func:`_allowed_method`; no
``ljust``, ``zfill``, ``format`` …).
"""

from __future__ import annotations

import functools
import threading
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

MAX_INT_BITS = 4096
"""Largest integer an operator may build (about 1,230 decimal digits)."""
MAX_NESTING = 48
"""Deepest nesting of blocks and expressions (Python's compiler gives up not far beyond)."""

ALLOWED_FILTERS = frozenset(
    {
        "abs",
        "capitalize",
        "center",
        "count",
        "d",
        "default",
        "filesizeformat",
        "first",
        "float",
        "format",
        "int",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "max",
        "min",
        "replace",
        "reverse",
        "round",
        "sort",
        "string",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
    }
)
_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "replace",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
    }
)
_SEQUENCE_METHODS = frozenset({"count", "index"})
_DICT_METHODS = frozenset({"get"})
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
    """What one render may still spend: time until its deadline, and characters of output."""

    __slots__ = ("_deadline", "_limits", "_output_left")

    def __init__(self, limits: TemplateLimits) -> None:
        self._limits = limits
        self._deadline = time.monotonic() + limits.render_seconds
        self._output_left = limits.max_rendered_chars

    @property
    def limit(self) -> int:
        return self._limits.max_rendered_chars

    def tick(self) -> None:
        if time.monotonic() > self._deadline:
            raise OverLimit(
                f"takes more than {self._limits.render_seconds:g} s to render "
                "(SMSBRIDGE_TEMPLATE_RENDER_SECONDS)"
            )

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


def _allowed_method(function: object) -> bool:
    """A read-only method of text, a list or tuple, or a dict (``get``)."""
    if not isinstance(function, types.BuiltinMethodType):
        return False
    owner, name = function.__self__, function.__name__
    if isinstance(owner, str):
        return name in _STR_METHODS
    if isinstance(owner, list | tuple):
        return name in _SEQUENCE_METHODS
    if isinstance(owner, dict):
        return name in _DICT_METHODS
    return False


def _replaced_size(text: object, old: object, new: object, count: object = -1) -> int:
    text, old, new = str(text), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


class _CodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a concatenation that checks the size first."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(SandboxedEnvironment):
    """The sandbox, with every way to build a value going through the render's budget.

    ``local.budget`` is the current render's :class:`RenderBudget` (None while compiling).
    """

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    intercepted_unops = frozenset({"+", "-"})
    code_generator_class = _CodeGenerator

    def __init__(self, local: threading.local, **options: Any) -> None:
        super().__init__(**options)
        self._local = local
        self.globals.clear()
        self.finalize = self.finalize_output
        stock = self.filters
        self.filters = {name: self._bounded(name, stock[name]) for name in ALLOWED_FILTERS}

    def budget(self) -> RenderBudget:
        budget: RenderBudget | None = getattr(self._local, "budget", None)
        if budget is None:
            raise NotRendering
        return budget

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # The stock sandbox answers an unsafe attribute with an undefined value, which would
        # render as nothing; an attempt to escape is refused outright instead.
        raise SecurityError(f"access to attribute {attribute!r} is not allowed")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = self.budget()
        budget.tick()
        if operator == "**" and _is_int(left) and _is_int(right) and right > 0:
            at_least = (left.bit_length() - 1) * right + 1  # the result, checked after, is
            if abs(left) > 1 and at_least > MAX_INT_BITS:  # at most twice that
                raise OverLimit(
                    f"'**' would build an integer of at least {at_least:,} bits; "
                    f"the limit is {MAX_INT_BITS:,}"
                )
        elif operator == "*":
            if _is_int(left) and _is_int(right):
                at_least = left.bit_length() + right.bit_length() - 1
                if at_least > MAX_INT_BITS:
                    raise OverLimit(
                        f"'*' would build an integer of at least {at_least:,} bits; "
                        f"the limit is {MAX_INT_BITS:,}"
                    )
            else:
                count, item = (left, right) if _is_int(left) else (right, left)
                if _is_int(count) and isinstance(item, str | list | tuple) and count > 0:
                    budget.allow(count * max(budget.size_of(item), 1))
        elif operator == "+" and isinstance(left, str | list | tuple):
            budget.allow(budget.size_of(left) + budget.size_of(right))
        elif operator == "%" and isinstance(left, str):
            budget.allow(format_size(left, right, budget.limit))
        return budget.result(self.binop_table[operator](left, right))

    def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
        self.budget().tick()
        return self.unop_table[operator](arg)

    def call(
        self, context: Context, function: Any, /, *args: Any, **kwargs: Any
    ) -> Any:  # the sandbox's own signature
        budget = self.budget()
        budget.tick()
        if not isinstance(function, Undefined):  # calling an undefined says it is undefined
            if not _allowed_method(function):
                name = getattr(function, "__name__", type(function).__name__)
                raise SecurityError(f"calling {name!r} is not allowed in a message template")
            budget.check_arguments(args, kwargs)
            if function.__name__ == "replace" and isinstance(function.__self__, str):
                budget.allow(_replaced_size(function.__self__, *args[:3]))
        return budget.result(context.call(function, *args, **kwargs))

    def bounded_concat(self, values: tuple[Any, ...]) -> str:
        """``a ~ b ~ …``: sized before it is built."""
        budget = self.budget()
        budget.tick()
        budget.allow(sum(budget.size_of(v) for v in values))
        return "".join([v if isinstance(v, str) else str(v) for v in values])

    def finalize_output(self, value: Any) -> str:
        """What ``{{ … }}`` prints (None as nothing), counted against the output limit."""
        budget = self.budget()
        budget.tick()
        return budget.output("" if value is None else value)

    def _bounded(self, name: str, stock: Callable[..., Any]) -> Callable[..., Any]:
        check = _FILTER_CHECKS.get(name)

        @functools.wraps(stock)  # keeps Jinja's pass_eval_context / pass_environment marks
        def bounded(*args: Any, **kwargs: Any) -> Any:
            budget = self.budget()
            budget.tick()
            budget.check_arguments(args, kwargs)
            if check is not None:
                return budget.result(check(budget, stock, *args, **kwargs))
            return budget.result(stock(*args, **kwargs))

        return bounded


def _is_int(value: object) -> bool:
    return isinstance(value, int)


def _center(budget: RenderBudget, stock: Callable[..., Any], value: Any, width: Any = 80) -> Any:
    if _is_int(width):
        budget.allow(max(width, budget.size_of(value)))
    return stock(value, width)


def _replace(
    budget: RenderBudget,
    stock: Callable[..., Any],
    context: Any,
    text: Any,
    old: Any,
    new: Any,
    count: Any = None,
) -> Any:
    budget.allow(_replaced_size(text, old, new, -1 if count is None else count))
    return stock(context, text, old, new, count)


def _join(
    budget: RenderBudget,
    stock: Callable[..., Any],
    context: Any,
    value: Any,
    separator: Any = "",
    attribute: Any = None,
) -> Any:
    items = list(value)
    if attribute is not None:
        getter = make_attrgetter(context.environment, attribute)
        items = [getter(item) for item in items]
    size = len(str(separator)) * max(len(items) - 1, 0)
    for item in items:
        if size > budget.limit:
            break
        size += budget.size_of(item)
    budget.allow(size)
    return stock(context, items, separator)


def _format(
    budget: RenderBudget, stock: Callable[..., Any], value: Any, *args: Any, **kwargs: Any
) -> Any:
    budget.allow(format_size(str(value), kwargs or args, budget.limit))
    return stock(value, *args, **kwargs)


_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "replace": _replace,
    "join": _join,
    "format": _format,
}
