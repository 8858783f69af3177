"""Personalization: message bodies are Jinja2 templates rendered in a sandbox.

``{{ profile.firstName }}``, ``{{ profile.phone }}``, request ``variables`` by name
(``{{ code }}``, also as ``{{ variables.code }}``), filters (``default``, ``upper``, ``lower``,
``title``, ``truncate``, …) and ``{% if %}`` blocks. What a template may do is deliberately
small:

* values are data, never templates: an attribute holding ``{{ 7*7 }}`` is sent as typed;
* the sandbox refuses attribute escapes (``''.__class__.__mro__``); such templates are
  rejected as invalid input, like syntax errors (with line and column);
* only ``{% if %}`` / ``{% elif %}`` / ``{% else %}`` blocks: no loops, macros, includes or
  assignments, so rendering time is bounded by the template's length;
* ``*`` and ``**`` are capped, so ``{{ 'x' * 10**9 }}`` cannot exhaust memory;
* an undefined name renders as nothing and is reported (:attr:`Rendered.undefined`).

Compiled templates are cached per source text.
"""

from __future__ import annotations

import operator
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from smsbridge.errors import FieldError, InvalidInput

ALLOWED_BLOCKS = (nodes.If, nodes.Output, nodes.TemplateData)
MAX_PRODUCT = 2_000
"""Longest string or list a ``*`` may build, and the largest ``**`` exponent's result size."""
_TAG_START = re.compile(r"\{[{%#]")


class _Tracked(ChainableUndefined):
    """Undefined that renders empty, chains (``profile.a.b``) and reports its name."""

    __slots__ = ()
    _local: threading.local  # set per Personalizer: where a render collects its names

    def __str__(self) -> str:
        self._record()
        return ""

    def __bool__(self) -> bool:
        self._record()
        return False

    def _record(self) -> None:
        seen: list[str] | None = getattr(self._local, "names", None)
        if seen is None:
            return
        name = self._undefined_name or ""
        owner = self._undefined_obj
        if isinstance(owner, ProfileView):
            name = f"profile.{name}"
        if name and name not in seen:
            seen.append(name)


class ProfileView(dict[str, Any]):
    """The ``profile`` a template sees: attributes plus ``phone``, ``external_id`` and
    ``timezone`` (a dict subclass so that undefined names can say they were profile ones)."""


def _limited_binop(left: Any, right: Any, op: Any) -> Any:
    if op is operator.mul:
        for count, item in ((right, left), (left, right)):
            if (
                isinstance(count, int)
                and isinstance(item, str | list | tuple)
                and count * len(item) > MAX_PRODUCT
            ):
                raise SecurityError("'*' would build a value that is too long")
    if op is operator.pow and isinstance(right, int) and abs(right) > 64:
        raise SecurityError("'**' exponent too large")
    return op(left, right)


class _Environment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # The stock sandbox answers an unsafe attribute with an undefined value, which would
        # render as nothing; an attempt to escape is refused outright instead.
        raise SecurityError(f"access to attribute {attribute!r} is not allowed")

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        op = operator.mul if operator_name == "*" else operator.pow
        return _limited_binop(left, right, op)


class _Substitution:
    """A template that only substitutes values — text and ``{{ profile.x }}`` / ``{{ x }}`` /
    ``{{ variables.x }}`` outputs, no filters or blocks — rendered without Jinja's machinery
    (the common marketing template, rendered for every recipient of a campaign)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[str | tuple[str, str]]) -> None:
        self.parts = parts

    def render(
        self, profile: Mapping[str, Any], variables: Mapping[str, Any], undefined: list[str]
    ) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            scope, name = part
            source = profile if scope == "profile" else variables
            if name in source:
                value = source[name]
                if value is not None:
                    out.append(value if isinstance(value, str) else str(value))
            else:
                label = f"profile.{name}" if scope == "profile" else name
                if label not in undefined:
                    undefined.append(label)
        return "".join(out)


def _substitution(tree: nodes.Template, reserved: frozenset[str]) -> _Substitution | None:
    """The template as a :class:`_Substitution`, or None when it needs Jinja."""
    parts: list[str | tuple[str, str]] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
            elif (
                isinstance(child, nodes.Getattr)
                and isinstance(child.node, nodes.Name)
                and child.node.name in ("profile", "variables")
                and child.attr not in _DICT_ATTRIBUTES
            ):
                parts.append(
                    ("profile" if child.node.name == "profile" else "variables", child.attr)
                )
            elif isinstance(child, nodes.Name) and child.name not in reserved:
                parts.append(("variables", child.name))
            else:
                return None
    return _Substitution(parts)


_DICT_ATTRIBUTES = frozenset(dir(dict))


@dataclass(frozen=True)
class Rendered:
    text: str
    undefined: tuple[str, ...]
    """Names the template used that had no value (rendered as nothing)."""


class Personalizer:
    """Compiles (with a cache) and renders message templates."""

    def __init__(self, cache_size: int = 1024) -> None:
        self._local = threading.local()
        undefined = type("Undefined", (_Tracked,), {"__slots__": (), "_local": self._local})
        self._env = _Environment(
            undefined=undefined,
            autoescape=False,
            keep_trailing_newline=True,
            auto_reload=False,
            finalize=_none_as_empty,
        )
        self._compile = lru_cache(maxsize=cache_size)(self._compile_uncached)

    def check(self, source: str, field: str = "body") -> None:
        """Raise :class:`InvalidInput` (naming ``field``) if ``source`` is not a usable template."""
        self._compile(source, field)

    def is_static(self, source: str) -> bool:
        """True when the template has no tags at all (it renders as itself)."""
        return _TAG_START.search(source) is None

    def render(
        self,
        source: str,
        *,
        profile: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        field: str = "body",
    ) -> Rendered:
        """Render ``source`` for one recipient; :class:`InvalidInput` if it cannot be."""
        if self.is_static(source):
            return Rendered(source, ())
        template = self._compile(source, field)
        if isinstance(template, _Substitution):
            names: list[str] = []
            text = template.render(profile or {}, variables or {}, names)
            return Rendered(text, tuple(names))
        context: dict[str, Any] = dict(variables or {})
        context["variables"] = dict(variables or {})
        context["profile"] = ProfileView(profile or {})
        names = []
        self._local.names = names
        try:
            text = template.render(context)
        except SecurityError as exc:
            raise InvalidInput.one(field, f"not allowed in a message template: {exc}") from None
        except TemplateError as exc:
            raise InvalidInput.one(field, f"cannot be rendered: {exc}") from None
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise InvalidInput.one(field, f"cannot be rendered: {exc}") from None
        finally:
            self._local.names = None
        return Rendered(text, tuple(names))

    def _compile_uncached(self, source: str, field: str) -> Any:
        try:
            tree = self._env.parse(source)
        except TemplateSyntaxError as exc:
            raise _syntax_error(source, exc, field) from None
        for node in tree.body:
            _check_blocks(node, field)
        reserved = frozenset(self._env.globals) | {"profile", "variables"}
        return _substitution(tree, reserved) or self._env.from_string(tree)


class ProfileRenderer:
    """One template rendered for many profiles (a campaign's fan-out).

    A substitution-only template (the usual ``Hi {{ profile.firstName }}``) is memoized by
    the texts it substitutes from the profile: a campaign to a million people renders each
    distinct first name once. Other templates go through Jinja for every profile. At most
    ``memo_size`` texts are kept (the memo starts over when full), so per-profile values
    such as coupon codes cost a lookup, not memory.
    """

    def __init__(
        self,
        personalizer: Personalizer,
        source: str,
        variables: Mapping[str, Any],
        *,
        field: str = "body",
        memo_size: int = 10_000,
    ) -> None:
        self._personalizer = personalizer
        self._source = source
        self._variables = dict(variables)
        self._field = field
        self._memo_size = memo_size
        self._memo: dict[tuple[str, ...], str] = {}
        self._static = personalizer.is_static(source)
        self._broken: InvalidInput | None = None
        template = None
        if not self._static:
            try:
                template = personalizer._compile(source, field)
            except InvalidInput as exc:  # every render says so (each recipient is excluded)
                self._broken = exc
        self._substitution = template if isinstance(template, _Substitution) else None
        self._fields: tuple[str, ...] = ()
        if self._substitution is not None:
            # What the profile supplies: each profile field, once, in order.
            self._fields = tuple(
                dict.fromkeys(
                    part[1]
                    for part in self._substitution.parts
                    if not isinstance(part, str) and part[0] == "profile"
                )
            )

    def render(
        self,
        attributes: Mapping[str, Any],
        phone: str,
        external_id: str,
        timezone: str | None,
    ) -> str:
        """The text for one profile; :class:`InvalidInput` if it cannot be rendered."""
        if self._static:
            return self._source
        if self._broken is not None:  # a new exception each time (no growing traceback)
            raise InvalidInput(self._broken.errors, self._broken.message)
        builtin = {"phone": phone, "external_id": external_id, "timezone": timezone}
        if self._substitution is None:
            view = dict(attributes)
            view.update(builtin)
            return self._personalizer.render(
                self._source, profile=view, variables=self._variables, field=self._field
            ).text
        key = tuple(
            [
                _substituted(builtin[name] if name in builtin else attributes.get(name))
                for name in self._fields
            ]
        )
        text = self._memo.get(key)
        if text is None:
            if len(self._memo) >= self._memo_size:
                self._memo.clear()
            view = dict(zip(self._fields, key, strict=True))
            text = self._memo[key] = self._substitution.render(view, self._variables, [])
        return text


def _substituted(value: Any) -> str:
    """A value as a substitution renders it (None and missing alike: nothing)."""
    if isinstance(value, str):
        return value
    return "" if value is None else str(value)


def _none_as_empty(value: Any) -> Any:
    return "" if value is None else value


def _check_blocks(node: nodes.Node, field: str) -> None:
    if not isinstance(node, ALLOWED_BLOCKS):
        kind = type(node).__name__.lower()
        raise InvalidInput.one(
            field,
            f"line {node.lineno}: '{kind}' blocks are not supported in messages; "
            "use {{ … }} and {% if %}",
        )
    if isinstance(node, nodes.If):
        for child in [*node.body, *node.elif_, *node.else_]:
            _check_blocks(child, field)


def _syntax_error(source: str, exc: TemplateSyntaxError, field: str) -> InvalidInput:
    line = exc.lineno or 1
    column = _error_column(source, line)
    return InvalidInput(
        FieldError(field, f"template syntax error at line {line}, column {column}: {exc.message}")
    )


def _error_column(source: str, line: int) -> int:
    """1-based column of the tag that breaks ``line``: Jinja reports only the line.

    The first tag on that line that does not parse on its own is the culprit; when every
    tag parses alone (an unclosed block opened elsewhere), the last tag of the line is.
    """
    lines = source.splitlines() or [""]
    text = lines[min(line, len(lines)) - 1]
    starts = [m.start() for m in _TAG_START.finditer(text)]
    if not starts:
        return 1
    env = SandboxedEnvironment()
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        try:
            env.parse(text[start:end] if text[start + 1] != "%" else "")
        except TemplateSyntaxError:
            return start + 1
    return starts[-1] + 1
