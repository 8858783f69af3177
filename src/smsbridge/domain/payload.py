"""Structure-aware rendering of provider payloads.

A payload template is a JSON document (or a flat form) whose *string values* may hold
placeholders such as ``{{message}}``. It is parsed and compiled once per credential; rendering
substitutes values inside the parsed structure and then encodes it, so a message containing
quotes, backslashes, newlines, emoji, ``{{message}}`` or ``}}`` is sent verbatim and can never
change the structure of the request.

A payload is at most :data:`MAX_PAYLOAD_CHARS` characters, :data:`MAX_PAYLOAD_DEPTH` levels
deep and holds at most :data:`MAX_PLACEHOLDERS` placeholders, so neither compiling it nor
rendering it for each message can cost much (each placeholder may be a 1,600-character text).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias
from urllib.parse import quote, urlencode

import orjson

from smsbridge.domain.segments import Encoding
from smsbridge.errors import FieldError, InvalidInput, LimitExceeded, phrase

REQUIRED_PLACEHOLDERS = ("toNumber", "fromNumber", "message")
# ``…Digits`` variants give the number without its leading "+", for providers (Vonage)
# that want E.164 digits only; each satisfies the requirement of its plain form.
OPTIONAL_PLACEHOLDERS = (
    "messageId",
    "statusCallbackUrl",
    "appId",
    "toNumberDigits",
    "fromNumberDigits",
    "encoding",
)
ALLOWED_PLACEHOLDERS = frozenset(REQUIRED_PLACEHOLDERS + OPTIONAL_PLACEHOLDERS)
URL_PLACEHOLDERS = frozenset({"appId"})
MAX_PAYLOAD_CHARS = 65_536
"""Largest payload template, in characters of JSON (a provider's request is well under 4 KB)."""
MAX_PAYLOAD_DEPTH = 32
"""Deepest nesting of objects and arrays in a payload template."""
MAX_PLACEHOLDERS = 100
"""Most placeholders in a payload template, counting each occurrence."""

# Anything between double braces is a placeholder attempt; names are checked separately so a
# typo such as ``{{ to_number }}`` is reported by name instead of being sent literally.
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")
# ``{{encoding|GSM-7:text|UCS-2:unicode}}``: a value per encoding (Vonage's ``type``).
CHOICE_PLACEHOLDERS = {"encoding": tuple(e.value for e in Encoding)}
OMITTED_WHEN_EMPTY = "statusCallbackUrl"
"""A member holding only this placeholder is left out when it has no value (see render)."""


class ContentType(StrEnum):
    JSON = "application/json"
    FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Placeholder:
    name: str
    choices: tuple[tuple[str, str], ...] = ()
    """(value, what to write instead) pairs, e.g. ``(("GSM-7", "text"), ("UCS-2", "unicode"))``."""

    def pick(self, values: Mapping[str, str]) -> str:
        value = values[self.name]
        return dict(self.choices).get(value, value) if self.choices else value


@dataclass(frozen=True)
class TextTemplate:
    """A string split into literal parts and placeholders."""

    parts: tuple[str | Placeholder, ...]

    def render(self, values: Mapping[str, str]) -> str:
        if len(self.parts) == 1:
            only = self.parts[0]
            return only.pick(values) if isinstance(only, Placeholder) else only
        return "".join(p if isinstance(p, str) else p.pick(values) for p in self.parts)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.parts if isinstance(p, Placeholder))


@dataclass(frozen=True)
class _Array:
    items: tuple[Compiled, ...]


@dataclass(frozen=True)
class _Object:
    items: tuple[tuple[str, Compiled], ...]


JsonScalar: TypeAlias = str | int | float | bool | None
Compiled: TypeAlias = TextTemplate | JsonScalar | _Array | _Object


def parse_text(
    text: str, field: str, allowed: frozenset[str]
) -> tuple[TextTemplate, list[FieldError]]:
    """Split ``text`` into literals and placeholders, reporting unknown or malformed names."""
    parts: list[str | Placeholder] = []
    errors: list[FieldError] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > position:
            parts.append(text[position : match.start()])
        if "|" in match.group(1):
            choice, problem = _parse_choices(match.group(0), match.group(1))
            if choice is None:
                errors.append(FieldError(field, problem))
            elif choice.name not in allowed:
                said = phrase("%(name)s is not allowed here", name=_braced(choice.name))
                errors.append(FieldError(field, said))
            else:
                parts.append(choice)
            position = match.end()
            continue
        name_match = _NAME.match(match.group(1))
        if name_match is None:
            errors.append(
                FieldError(field, phrase("malformed placeholder %(given)r", given=match.group(0)))
            )
        elif name_match.group(1) not in allowed:
            said = phrase(
                "unknown placeholder %(given)s; allowed: %(allowed)s",
                given=_braced(name_match.group(1)),
                allowed=", ".join(_braced(n) for n in sorted(allowed)),
            )
            errors.append(FieldError(field, said))
        else:
            parts.append(Placeholder(name_match.group(1)))
        position = match.end()
    if position < len(text) or not parts:
        parts.append(text[position:])
    return TextTemplate(tuple(parts)), errors


def _braced(name: str) -> str:
    return "{{" + name + "}}"


def _parse_choices(whole: str, inner: str) -> tuple[Placeholder | None, str]:
    """``{{encoding|GSM-7:text|UCS-2:unicode}}``: a placeholder with a value per case."""
    name, *pairs = (piece.strip() for piece in inner.split("|"))
    cases = CHOICE_PLACEHOLDERS.get(name)
    if cases is None:
        takes = ", ".join("{{" + n + "}}" for n in CHOICE_PLACEHOLDERS)
        return None, f"{whole!r}: only {takes} takes a value per case ({{{{name|case:value|…}}}})"
    choices: dict[str, str] = {}
    for pair in pairs:
        case, colon, value = pair.partition(":")
        case = case.strip()
        if not colon or case not in cases or case in choices:
            return None, f"{whole!r}: give each of {', '.join(cases)} once, as case:value"
        choices[case] = value.strip()
    if set(choices) != set(cases):
        return None, f"{whole!r}: give each of {', '.join(cases)} once, as case:value"
    return Placeholder(name, tuple(choices.items())), ""


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


MAX_INT = 2**63 - 1
MIN_INT = -(2**63)


def load_payload(payload: object, field: str = "payload") -> object:
    """Accept a JSON object, or a string holding one; anything else is a field error
    (:class:`LimitExceeded` when it is over :data:`MAX_PAYLOAD_CHARS`, deeper than
    :data:`MAX_PAYLOAD_DEPTH` or has more than :data:`MAX_PLACEHOLDERS` placeholders)."""
    if isinstance(payload, str):
        if len(payload) > MAX_PAYLOAD_CHARS:
            raise LimitExceeded.one(field, _too_long(len(payload)))
        try:
            payload = json.loads(payload, parse_constant=_reject_constant)
        except RecursionError:
            raise LimitExceeded.one(field, _too_deep()) from None
        except ValueError as exc:
            if not isinstance(exc, json.JSONDecodeError):
                raise InvalidInput.one(field, str(exc)) from None
            said = phrase(
                "not valid JSON at line %(line)s, column %(column)s: %(why)s",
                **{"line": exc.lineno, "column": exc.colno, "why": exc.msg},
            )
            if "{{" in exc.doc[max(0, exc.pos - 2) : exc.pos + 2]:
                said = phrase(
                    '%(problem)s; placeholders must sit inside quoted strings, e.g. "{{toNumber}}"',
                    problem=said,
                )
            raise InvalidInput.one(field, said) from None
    if not isinstance(payload, dict):
        raise InvalidInput.one(field, phrase("must be a JSON object (or a string holding one)"))
    _check_shape(payload, field)
    return payload


def _check_shape(document: object, field: str) -> None:
    """Size, depth and placeholders within the limits (walked without recursion, stopping at
    the first excess, so a document 100,000 levels deep costs no more than a small one)."""
    size, placeholders = 0, 0
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list):
            if depth > MAX_PAYLOAD_DEPTH:
                raise LimitExceeded.one(field, _too_deep())
            size += 2 + len(node)
            if isinstance(node, dict):
                size += sum(len(str(key)) + 3 for key in node)
            pending.extend((child, depth + 1) for child in _children(node))
        elif isinstance(node, str):
            size += len(node) + 2
            placeholders += node.count("{{")
        else:
            size += 8
        if size > MAX_PAYLOAD_CHARS:
            raise LimitExceeded.one(field, _too_long())
        if placeholders > MAX_PLACEHOLDERS:
            said = phrase("has more than %(most)s placeholders, the limit", most=MAX_PLACEHOLDERS)
            raise LimitExceeded.one(field, said)


def _children(node: dict[object, object] | list[object]) -> Iterable[object]:
    return node.values() if isinstance(node, dict) else node


def _too_long(size: int | None = None) -> str:
    most = f"{MAX_PAYLOAD_CHARS:,}"
    if size is None:
        return phrase("is more than %(most)s characters of JSON, the limit", most=most)
    return phrase("is %(size)s characters; the limit is %(most)s", size=f"{size:,}", most=most)


def _too_deep() -> str:
    return phrase(
        "is nested more than %(most)s levels deep; the limit is %(most)s", most=MAX_PAYLOAD_DEPTH
    )


class PayloadTemplate:
    """A compiled payload: render it with placeholder values to get the exact request body."""

    def __init__(self, compiled: Compiled, content_type: ContentType, names: frozenset[str]):
        self._compiled = compiled
        self.content_type = content_type
        self.placeholders = names
        self._json_parts: tuple[bytes, ...] = ()
        self._json_slots: tuple[TextTemplate, ...] = ()
        if content_type is ContentType.JSON:
            self._json_parts, self._json_slots = _json_skeleton(compiled)
        # Without a status webhook URL (a credential test, a preview), members that would carry
        # it are left out: providers refuse an empty callback URL.
        self._without_callback: PayloadTemplate | None = None
        if OMITTED_WHEN_EMPTY in names:
            self._without_callback = PayloadTemplate(
                _without_member(compiled, OMITTED_WHEN_EMPTY),
                content_type,
                names - {OMITTED_WHEN_EMPTY},
            )

    @classmethod
    def compile(
        cls,
        payload: object,
        content_type: ContentType,
        field: str = "payload",
        required: Sequence[str] = REQUIRED_PLACEHOLDERS,
    ) -> PayloadTemplate:
        """Parse and check ``payload``; raise :class:`InvalidInput` listing every problem."""
        document = load_payload(payload, field)
        errors: list[FieldError] = []
        names: set[str] = set()
        if content_type is ContentType.FORM:
            assert isinstance(document, dict)
            for key, value in document.items():
                if isinstance(value, dict | list):
                    errors.append(
                        FieldError(
                            f"{field}.{key}",
                            phrase(
                                "form payloads must be flat: each field holds a string or number"
                            ),
                        )
                    )
        compiled = _compile_node(document, field, errors, names)
        for name in required:
            if name not in names and f"{name}Digits" not in names:
                said = phrase("must contain %(placeholder)s", placeholder=_braced(name))
                errors.append(FieldError(field, said))
        if errors:
            raise InvalidInput(errors)
        return cls(compiled, content_type, frozenset(names))

    def render_document(self, values: Mapping[str, str]) -> object:
        if self._without_callback is not None and not values.get(OMITTED_WHEN_EMPTY):
            return self._without_callback.render_document(values)
        return _render_node(self._compiled, values)

    def render(self, values: Mapping[str, str]) -> bytes:
        """The exact body bytes for these placeholder values."""
        if self._without_callback is not None and not values.get(OMITTED_WHEN_EMPTY):
            return self._without_callback.render(values)
        if self.content_type is ContentType.JSON:
            parts = self._json_parts
            pieces = [parts[0]]
            for slot, after in zip(self._json_slots, parts[1:], strict=True):
                pieces.append(orjson.dumps(slot.render(values)))
                pieces.append(after)
            return b"".join(pieces)
        document = _render_node(self._compiled, values)
        assert isinstance(document, dict)
        return urlencode([(k, _form_value(v)) for k, v in document.items()]).encode("ascii")


def _json_skeleton(compiled: Compiled) -> tuple[tuple[bytes, ...], tuple[TextTemplate, ...]]:
    """The JSON body cut around its templated strings, encoded once.

    Each templated string is replaced by a unique marker, the document is encoded, and the
    bytes are split at the encoded markers. Rendering then encodes only the values (each as a
    complete JSON string) and joins: the same bytes as encoding the rendered document, at a
    fraction of the cost per message.
    """
    token = secrets.token_hex(8)
    slots: list[TextTemplate] = []

    def mark(node: Compiled) -> object:
        if isinstance(node, TextTemplate):
            slots.append(node)
            return f"@@slot-{token}-{len(slots) - 1}@@"
        if isinstance(node, _Object):
            return {k: mark(v) for k, v in node.items}
        if isinstance(node, _Array):
            return [mark(v) for v in node.items]
        return node

    encoded = orjson.dumps(mark(compiled))
    parts: list[bytes] = []
    for index in range(len(slots)):
        before, encoded = encoded.split(f'"@@slot-{token}-{index}@@"'.encode(), 1)
        parts.append(before)
    parts.append(encoded)
    return tuple(parts), tuple(slots)


def _form_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compile_node(node: object, field: str, errors: list[FieldError], names: set[str]) -> Compiled:
    if isinstance(node, str):
        template, problems = parse_text(node, field, ALLOWED_PLACEHOLDERS)
        errors.extend(problems)
        names.update(template.names)
        return template if template.names else node
    if isinstance(node, dict):
        items: list[tuple[str, Compiled]] = []
        for key, value in node.items():
            if "{{" in key:
                errors.append(
                    FieldError(f"{field}.{key}", phrase("placeholders are only allowed in values"))
                )
            items.append((key, _compile_node(value, f"{field}.{key}", errors, names)))
        return _Object(tuple(items))
    if isinstance(node, list):
        return _Array(
            tuple(_compile_node(v, f"{field}[{i}]", errors, names) for i, v in enumerate(node))
        )
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        if not MIN_INT <= node <= MAX_INT:
            errors.append(FieldError(field, phrase("integers must fit in 64 bits")))
        return node
    if isinstance(node, float):
        if node != node or node in (float("inf"), float("-inf")):
            errors.append(FieldError(field, phrase("numbers must be finite")))
        return node
    errors.append(FieldError(field, f"unsupported value of type {type(node).__name__}"))
    return None


def _without_member(node: Compiled, name: str) -> Compiled:
    """``node`` without the object members whose whole value is ``{{name}}`` (and without the
    objects that leaves empty, so ``{"webhooks": {"delivery": {"url": …}}}`` goes whole)."""
    if isinstance(node, _Array):
        return _Array(tuple(_without_member(item, name) for item in node.items))
    if not isinstance(node, _Object):
        return node
    kept: list[tuple[str, Compiled]] = []
    for key, value in node.items:
        if isinstance(value, TextTemplate) and value.parts == (Placeholder(name),):
            continue
        stripped = _without_member(value, name)
        emptied = isinstance(stripped, _Object) and not stripped.items
        if isinstance(value, _Object) and value.items and emptied:
            continue
        kept.append((key, stripped))
    return _Object(tuple(kept))


def _render_node(node: Compiled, values: Mapping[str, str]) -> object:
    if isinstance(node, TextTemplate):
        return node.render(values)
    if isinstance(node, _Object):
        return {k: _render_node(v, values) for k, v in node.items}
    if isinstance(node, _Array):
        return [_render_node(v, values) for v in node.items]
    return node


@dataclass(frozen=True)
class UrlTemplate:
    """A provider URL that may hold ``{{appId}}`` (e.g. Twilio's account SID in the path)."""

    template: TextTemplate

    @classmethod
    def compile(cls, url: str, field: str = "provider_url") -> UrlTemplate:
        template, errors = parse_text(url, field, URL_PLACEHOLDERS)
        if errors:
            raise InvalidInput(errors)
        return cls(template)

    @property
    def names(self) -> frozenset[str]:
        return self.template.names

    def render(self, values: Mapping[str, str]) -> str:
        return self.template.render({k: quote(v, safe="") for k, v in values.items()})
