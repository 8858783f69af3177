"""The one error tree of smsbridge.

Each class docstring is its default message. ``api/`` maps these to HTTP in one place;
nothing below ``api/`` raises HTTP exceptions. Foreign exceptions are translated once,
at the boundary where they occur (``raise ProviderUnreachable(...) from exc``).

::

    SmsbridgeError
    ├── InvalidInput            422  field-level ``errors``
    │   └── LimitExceeded       422  the input is over a configured limit (named in the message)
    ├── MalformedWebhook        400  a provider's webhook body cannot be read
    ├── WebhookNotAuthentic     403  a provider's webhook signature does not verify
    ├── NotFound                404
    ├── Conflict                409  ``errors`` name the field when a value clashes (a name)
    ├── AuthenticationRequired  401
    ├── PermissionDenied        403
    ├── ConfigurationError          a setting is not valid (reported at start-up)
    ├── SecretsUnavailable          a stored secret cannot be decrypted with the configured keys
    └── DeliveryError               an outbound provider request did not succeed
        ├── DestinationBlocked      the provider URL resolves to a refused address (SSRF guard)
        ├── ProviderUnreachable     DNS failure, connection refused/reset before a response
        └── ProviderTimeout         no (complete) response in time; the request may have landed

A provider's answer, whatever its status, is no error: it is judged
(``domain/provider_answers.py``) into an outcome the retry policy decides on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Phrase(str):
    """A text shown to people, which the admin can show in the visitor's language.

    It *is* the English text (what the API answers and logs say), and it remembers the
    template and the values it was made from, so that ``smsbridge.web`` looks the template up
    in its catalog and fills the translation with the same values. Make one with
    :func:`phrase`; anything that builds a new string from it (slicing, concatenating) gets
    plain English.
    """

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, values: dict[str, Any]) -> Phrase:
        made = super().__new__(cls, template % values if values else template)
        made.template = template
        made.values = values
        return made


def phrase(template: str, /, **values: Any) -> Phrase:
    """``template`` (English, with ``%(name)s`` placeholders: a literal ``%`` is ``%%`` when
    there are values) filled with ``values``, translatable by the admin.

    ``make messages`` extracts the templates of ``phrase(…)`` calls (``babel.cfg``); write the
    template as a literal, never an f-string, or it cannot be looked up."""
    return Phrase(template, values)


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field; ``field`` is a dotted path such as ``auth.token``."""

    field: str
    message: str


class SmsbridgeError(Exception):
    """Something went wrong in smsbridge."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or "").strip())

    @property
    def message(self) -> str:
        said = self.args[0]
        return said if isinstance(said, str) else str(said)  # a Phrase stays one


class InvalidInput(SmsbridgeError):
    """The input is not valid."""

    def __init__(self, errors: list[FieldError] | FieldError, message: str | None = None) -> None:
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)
        if message is None and len(self.errors) == 1:
            message = f"{self.errors[0].field}: {self.errors[0].message}"
        elif message is None and self.errors:
            fields = ", ".join(dict.fromkeys(e.field for e in self.errors))
            message = f"{len(self.errors)} problems with the input ({fields})"
        super().__init__(message)

    @classmethod
    def one(cls, field: str, message: str) -> InvalidInput:
        return cls(FieldError(field, message))


class LimitExceeded(InvalidInput):
    """The input is over a configured limit.

    Kept apart from other invalid input where a use case reports problems instead of raising
    them (a message preview): going over a limit is a refusal to do the work, never a finding.
    """


class MalformedWebhook(SmsbridgeError):
    """The webhook body cannot be read."""


class WebhookNotAuthentic(SmsbridgeError):
    """The webhook's signature does not verify."""


class NotFound(SmsbridgeError):
    """No such resource."""


class Conflict(SmsbridgeError):
    """The request conflicts with the current state of the resource."""

    def __init__(self, message: str | None = None, errors: list[FieldError] | None = None) -> None:
        self.errors = list(errors or [])
        if message is None and self.errors:
            message = f"{self.errors[0].field}: {self.errors[0].message}"
        super().__init__(message)

    @classmethod
    def on(cls, field: str, message: str) -> Conflict:
        """A clash on one field (a name already taken)."""
        return cls(errors=[FieldError(field, message)])


class AuthenticationRequired(SmsbridgeError):
    """A valid API key is required (Authorization: Bearer <key>)."""


class PermissionDenied(SmsbridgeError):
    """This API key's role does not allow this operation."""


class ConfigurationError(SmsbridgeError):
    """The configuration is not valid."""


class SecretsUnavailable(SmsbridgeError):
    """A stored secret cannot be decrypted with the configured SMSBRIDGE_SECRET_KEYS."""


class DeliveryError(SmsbridgeError):
    """The provider request did not succeed."""

    transient: bool = True


class DestinationBlocked(DeliveryError):
    """The provider URL resolves to a private, loopback or metadata address, which is refused."""

    transient = False


class ProviderUnreachable(DeliveryError):
    """The provider could not be reached (DNS failure, connection refused or reset)."""


class ProviderTimeout(DeliveryError):
    """The provider did not answer in time; the request may have been received."""
