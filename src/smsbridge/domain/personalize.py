"""Personalization: message bodies are Jinja2 templates rendered in a sandbox.

``{{ profile.firstName }}``, ``{{ profile.phone }}``, request ``variables`` by name
(``{{ code }}``, also as ``{{ variables.code }}``), filters (``default``, ``upper``, ``lower``,
``title``, ``truncate``, …) and ``{% if %}`` blocks. What a template may do is deliberately
small:

* values are data, never templates: an attribute holding ``{{ 7*7 }}`` is sent as typed;
* the sandbox refuses attribute escapes (``''.__class__.__mro__``); such templates are
  rejected as invalid input, like syntax errors (with line and column);
* only ``{% if %}`` / ``{% elif %}`` / ``{% else %}`` blocks: no loops, macros, includes or
  assignments;
* what one render may cost is bounded (:mod:`smsbridge.domain.template_sandbox`): the
  template's length, the size of every value it builds, its output and its time; going over
  raises :class:`~smsbridge.errors.LimitExceeded` naming the field and the limit;
* an undefined name renders as nothing and is reported (:attr:`Rendered.undefined`).

Compiled templates up to :data:`CACHEABLE_TEMPLATE_CHARS` long are cached per source text
(a long one is compiled each time: the cache never holds much).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from smsbridge.domain.render_budget import OverLimit, RenderBudget, TemplateLimits
from smsbridge.domain.template_sandbox import MAX_NESTING, BoundedEnvironment
from smsbridge.errors import FieldError, InvalidInput, LimitExceeded, phrase

ALLOWED_BLOCKS = (nodes.If, nodes.Output, nodes.TemplateData)
CACHEABLE_TEMPLATE_CHARS = 2_000
"""Longest template kept compiled (compiling 10,000 characters takes about 0.3 s and much
memory; the usual message is a few hundred)."""
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


class _Substitution:
    """A template that only substitutes values — text and ``{{ profile.x }}`` / ``{{ x }}`` /
    ``{{ variables.x }}`` outputs, no filters or blocks — rendered without Jinja's machinery
    (the common marketing template, rendered for every recipient of a campaign)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[str | tuple[str, str]]) -> None:
        self.parts = parts

    def render(
        self,
        profile: Mapping[str, Any],
        variables: Mapping[str, Any],
        undefined: list[str],
        limits: TemplateLimits,
    ) -> str:
        out: list[str] = []
        size = 0
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            scope, name = part
            source = profile if scope == "profile" else variables
            if name in source:
                value = source[name]
                if value is not None:
                    text = value if isinstance(value, str) else str(value)
                    size += len(text)
                    if size > limits.max_rendered_chars:  # {{ v }}{{ v }}… of a long v
                        raise OverLimit(limits.over_output())
                    out.append(text)
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
    """Compiles (with a cache) and renders message templates, within ``limits``.

    Rendering a template that needs Jinja (not plain text or plain substitutions) takes up to
    ``limits.render_seconds`` of CPU: callers on an event loop run it in a thread
    (:meth:`is_static` tells which need not).
    """

    def __init__(self, limits: TemplateLimits | None = None, *, cache_size: int = 256) -> None:
        self.limits = limits or TemplateLimits()
        self._local = threading.local()
        undefined = type("Undefined", (_Tracked,), {"__slots__": (), "_local": self._local})
        self._env = BoundedEnvironment(
            self._local,
            undefined=undefined,
            autoescape=False,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self._cached = lru_cache(maxsize=cache_size)(self._compile_uncached)

    def check(self, source: str, field: str = "body") -> None:
        """Raise :class:`InvalidInput` (naming ``field``) if ``source`` is not a usable template."""
        self._compile(source, field)

    def check_length(self, source: str, field: str = "body") -> None:
        """Raise :class:`LimitExceeded` if ``source`` is too long to be a template."""
        problem = self.limits.too_long(source)
        if problem is not None:
            raise LimitExceeded.one(field, problem)

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
        """Render ``source`` for one recipient; :class:`InvalidInput` if it cannot be
        (:class:`LimitExceeded` if that would go over a limit)."""
        self.check_length(source, field)
        if self.is_static(source):
            return Rendered(source, ())
        template = self._compile(source, field)
        names: list[str] = []
        if isinstance(template, _Substitution):
            try:
                text = template.render(profile or {}, variables or {}, names, self.limits)
            except OverLimit as exc:
                raise LimitExceeded.one(field, str(exc)) from None
            return Rendered(text, tuple(names))
        context: dict[str, Any] = dict(variables or {})
        context["variables"] = dict(variables or {})
        context["profile"] = ProfileView(profile or {})
        self._local.names = names
        self._local.budget = RenderBudget(self.limits)
        try:
            text = template.render(context)
        except OverLimit as exc:
            raise LimitExceeded.one(field, str(exc)) from None
        except (RecursionError, MemoryError):
            raise LimitExceeded.one(field, phrase("needs too much memory to render")) from None
        except SecurityError as exc:
            raise InvalidInput.one(
                field, phrase("not allowed in a message template: %(why)s", why=str(exc))
            ) from None
        except (TemplateError, ArithmeticError, AttributeError, TypeError, ValueError) as exc:
            raise InvalidInput.one(
                field, phrase("cannot be rendered: %(why)s", why=str(exc))
            ) from None
        finally:
            self._local.names = None
            self._local.budget = None
        if len(text) > self.limits.max_rendered_chars:  # its literal text counts too
            raise LimitExceeded.one(field, self.limits.over_output())
        return Rendered(text, tuple(names))

    def _compile(self, source: str, field: str) -> Any:
        if len(source) <= CACHEABLE_TEMPLATE_CHARS:
            return self._cached(source, field)
        return self._compile_uncached(source, field)

    def _compile_uncached(self, source: str, field: str) -> Any:
        self.check_length(source, field)
        nested = LimitExceeded.one(
            field, phrase("is nested more than %(most)s levels deep", most=MAX_NESTING)
        )
        try:
            tree = self._env.parse(source)
        except TemplateSyntaxError as exc:
            raise _syntax_error(source, exc, field) from None
        except (RecursionError, MemoryError):
            raise nested from None
        except ValueError as exc:  # e.g. an integer literal of more than 4,300 digits
            raise InvalidInput.one(
                field, phrase("cannot be compiled: %(why)s", why=str(exc))
            ) from None
        for node, depth in _walk(tree):
            if depth > MAX_NESTING:
                raise nested
            if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
                raise InvalidInput.one(
                    field,
                    phrase(
                        "not allowed in a message template: "
                        "access to attribute %(name)r is not allowed",
                        name=node.attr,
                    ),
                )
        for node in tree.body:
            _check_blocks(node, field)
        reserved = frozenset(self._env.globals) | {"profile", "variables"}
        try:
            return _substitution(tree, reserved) or self._env.from_string(tree)
        except TemplateSyntaxError as exc:  # e.g. a filter that does not exist
            raise _syntax_error(source, exc, field) from None
        except (RecursionError, MemoryError, SyntaxError):  # Python's compiler's own limits
            raise nested from None


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
        try:
            personalizer.check_length(source, field)
            if not self._static:
                template = personalizer._compile(source, field)
        except InvalidInput as exc:  # every render says so (each recipient is excluded)
            self._broken = exc
        self._substitution = template if isinstance(template, _Substitution) else None
        self.uses_engine = template is not None and self._substitution is None
        """Whether rendering goes through Jinja: up to ``render_seconds`` a profile, so a
        caller on an event loop renders in a thread."""
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
        if self._broken is not None:  # a new exception each time (no growing traceback)
            raise type(self._broken)(self._broken.errors, self._broken.message)
        if self._static:
            return self._source
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
            try:
                text = self._substitution.render(
                    view, self._variables, [], self._personalizer.limits
                )
            except OverLimit as exc:
                raise LimitExceeded.one(self._field, str(exc)) from None
            self._memo[key] = text
        return text


def _substituted(value: Any) -> str:
    """A value as a substitution renders it (None and missing alike: nothing)."""
    if isinstance(value, str):
        return value
    return "" if value is None else str(value)


def _walk(tree: nodes.Node) -> Iterator[tuple[nodes.Node, int]]:
    """Every node with how deep it is nested (without recursion: a caller stops when too deep)."""
    pending = [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        yield node, depth
        pending.extend((child, depth + 1) for child in node.iter_child_nodes())


def _check_blocks(node: nodes.Node, field: str) -> None:
    if not isinstance(node, ALLOWED_BLOCKS):
        kind = type(node).__name__.lower()
        raise InvalidInput.one(
            field,
            phrase(
                "line %(line)s: '%(kind)s' blocks are not supported in messages; "
                "use {{ … }} and {%% if %%}",
                line=node.lineno,
                kind=kind,
            ),
        )
    if isinstance(node, nodes.If):
        for child in [*node.body, *node.elif_, *node.else_]:
            _check_blocks(child, field)


def _syntax_error(source: str, exc: TemplateSyntaxError, field: str) -> InvalidInput:
    line = exc.lineno or 1
    column = _error_column(source, line)
    return InvalidInput(
        FieldError(
            field,
            phrase(
                "template syntax error at line %(line)s, column %(column)s: %(why)s",
                line=line,
                column=column,
                why=exc.message,
            ),
        )
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
