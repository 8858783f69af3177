"""The sandbox message templates render in, and what one render may cost.

A template is short (``max_template_chars``) and has no loops, yet one expression can still
ask for hours or gigabytes: ``((10**64)**64)**64``, ``'x'.ljust(10**9)``,
``'%999999999s' % 1``, ``[v, v, v, …] | join``. So every operator, filter, method call,
concatenation (``~``) and output goes through the render's :class:`RenderBudget`, which
refuses — *before* the work is done — any value over ``max_rendered_chars`` characters (an
integer over :data:`MAX_INT_BITS` bits), output past ``max_rendered_chars`` in all, and work
past the render's CPU allowance (``render_seconds``, checked at each of those steps: with no
loops, the work between two steps is bounded by the template's length).

Only what a message needs is there: the filters in :data:`ALLOWED_FILTERS` (no ``indent``,
``wordwrap``, ``batch``, ``tojson`` …), no globals (``range``, ``lipsum``, ``cycler``,
``dict`` …), and read-only methods of text, lists and dicts (:func:`_allowed_method`; no
``ljust``, ``zfill``, ``format`` …).
"""

from __future__ import annotations

import functools
import threading
import types
from collections.abc import Callable
from typing import Any

from jinja2 import Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from smsbridge.domain.render_budget import (
    MAX_INT_BITS,
    NotRendering,
    OverLimit,
    RenderBudget,
    format_size,
)

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
