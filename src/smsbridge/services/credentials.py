"""Credential use cases: create, read, update, delete, preview, test, rotate secrets."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smsbridge.delivery.gateway import ProviderGateway
from smsbridge.domain.credential_documents import (
    full_document,
    join_secrets,
    last4,
    merge_patch,
    require_reentered_secrets,
    split_secrets,
    view_document,
)
from smsbridge.domain.credential_parser import parse_credential
from smsbridge.domain.credentials import Credential
from smsbridge.domain.ids import new_id
from smsbridge.domain.phones import normalize_phone
from smsbridge.domain.ports import LoadedCredentials
from smsbridge.domain.provider_answers import extract_message_id, judge_response, redact
from smsbridge.domain.request import MessageValues, build_request
from smsbridge.domain.retry import OutcomeKind
from smsbridge.errors import DeliveryError, InvalidInput, NotFound, SecretsUnavailable
from smsbridge.providers.presets import PRESETS, apply_preset
from smsbridge.services.pagination import Page, check_limit, decode_cursor, page_of
from smsbridge.services.secretbox import SecretBox
from smsbridge.storage import credentials as repo
from smsbridge.storage.database import Database

DEFAULT_TEST_SENDER = "SMSBridge"
SANDBOX_URL = "sandbox://default"
WEBHOOK_MAPPINGS = ("inbound", "delivery_reports")

log = logging.getLogger("smsbridge.credentials")


def with_sandbox_webhooks(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document``, with the sandbox's webhook mappings where it sends through the sandbox
    without mappings of its own.

    The sandbox posts its delivery reports (and reads inbound messages) in one shape, the
    ``sandbox`` preset's; a credential on ``sandbox://default`` made without the preset (as the
    README's walk-through does) reads them the same way, instead of refusing every report.
    A mapping given explicitly is kept as given."""
    result = dict(document)
    if str(result.get("provider_url") or "").strip() == SANDBOX_URL:
        for key in WEBHOOK_MAPPINGS:
            if result.get(key) is None:
                result[key] = copy.deepcopy(PRESETS["sandbox"][key])
    return result


@dataclass(frozen=True)
class CredentialView:
    """A credential as the API shows it: secrets replaced by hints."""

    id: str
    document: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PreviewedRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class TestResult:
    ok: bool
    status_code: int | None
    provider_message_id: str | None
    latency_ms: int
    error: str | None
    provider_answer: str | None = None
    """The start of the provider's answer (at most :data:`ANSWER_SHOWN` characters), every
    secret the request carried replaced by ``****``."""


ANSWER_SHOWN = 2000


def shown_answer(body: bytes, secrets: Iterable[str]) -> str | None:
    """What a person may see of a provider's answer: decoded, secrets masked, cut short."""
    if not body:
        return None
    text = redact(body[: ANSWER_SHOWN * 4].decode("utf-8", errors="replace"), secrets)
    return text if len(text) <= ANSWER_SHOWN else text[:ANSWER_SHOWN] + "…"


class CredentialService:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        gateway: ProviderGateway,
        *,
        allow_private_urls: bool,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._box = box
        self._gateway = gateway
        self._allow_private = allow_private_urls
        self._clock = clock
        # Compiled credentials (or why one cannot be used) by id, valid while the row's
        # updated_at is unchanged, so the worker decrypts and compiles a credential once, not
        # once per message, and reports an unusable one once per version.
        self._compiled: dict[str, tuple[datetime, Credential | str]] = {}

    def _parse(self, document: Mapping[str, Any]) -> Credential:
        return parse_credential(
            with_sandbox_webhooks(document), allow_private_urls=self._allow_private
        )

    def _view(self, row: repo.CredentialRow) -> CredentialView:
        hints = row.secret_hints
        if any(hints.values()):
            # Hints stored before 0.2 show four characters even of short secrets: recompute
            # them from the secrets (admin views only; a few microseconds each).
            with contextlib.suppress(SecretsUnavailable):
                hints = last4(self._box.open(row.secrets))
        return CredentialView(
            row.id,
            view_document(with_sandbox_webhooks(row.document), hints),
            row.created_at,
            row.updated_at,
        )

    def _to_row(
        self, credential_id: str, cred: Credential, created: datetime, updated: datetime
    ) -> repo.CredentialRow:
        public, secrets = split_secrets(full_document(cred))
        return repo.CredentialRow(
            id=credential_id,
            name=cred.name,
            document=public,
            secrets=self._box.seal(secrets),
            secret_hints=last4(secrets),
            created_at=created,
            updated_at=updated,
        )

    async def create(self, document: Mapping[str, Any]) -> CredentialView:
        cred = self._parse(apply_preset(document))
        now = self._clock()
        row = self._to_row(new_id("cred"), cred, now, now)
        async with self._db.transaction() as conn:
            await repo.insert_credential(conn, row)
        return self._view(row)

    async def check(self, document: Mapping[str, Any], *, credential_id: str | None) -> None:
        """Validate what :meth:`create` (no ``credential_id``) or :meth:`update` would take,
        without saving: :class:`InvalidInput` naming every bad field. An edit is checked as
        merged with the stored credential, whose secrets count as given."""
        if credential_id is None:
            self._parse(apply_preset(document))
            return
        patch = dict(document)
        patch.pop("preset", None)
        async with self._db.read() as conn:
            row = await repo.get_credential(conn, credential_id)
        if row is None:
            raise NotFound(f"no credential {credential_id}")
        current = join_secrets(row.document, self._box.open(row.secrets))
        merged = merge_patch(current, patch)
        self._parse(merged)
        require_reentered_secrets(current, merged, patch)

    async def get(self, credential_id: str) -> CredentialView:
        async with self._db.read() as conn:
            row = await repo.get_credential(conn, credential_id)
        if row is None:
            raise NotFound(f"no credential {credential_id}")
        return self._view(row)

    async def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[CredentialView]:
        limit = check_limit(limit)
        async with self._db.read() as conn:
            rows = await repo.list_credentials(conn, limit=limit + 1, after=decode_cursor(cursor))
        return page_of(rows, limit, last_id=lambda r: r.id, view=self._view)

    async def update(self, credential_id: str, patch: Mapping[str, Any]) -> CredentialView:
        patch = dict(patch)
        preset = patch.pop("preset", None)
        async with self._db.transaction() as conn:
            row = await repo.get_credential(conn, credential_id, for_update=True)
            if row is None:
                raise NotFound(f"no credential {credential_id}")
            if preset is not None and preset != row.document.get("preset"):
                raise InvalidInput.one("preset", "a preset applies at creation only")
            current = join_secrets(row.document, self._box.open(row.secrets))
            merged = merge_patch(current, patch)
            cred = self._parse(merged)
            require_reentered_secrets(current, merged, patch)
            updated = self._to_row(credential_id, cred, row.created_at, self._clock())
            await repo.update_credential(conn, updated)
        return self._view(updated)

    async def delete(self, credential_id: str) -> None:
        async with self._db.transaction() as conn:
            if await repo.get_credential(conn, credential_id, for_update=True) is None:
                raise NotFound(f"no credential {credential_id}")
            await repo.delete_credential(conn, credential_id)

    async def load(self, credential_id: str) -> Credential:
        """The credential with its secrets, ready to send with."""
        async with self._db.read() as conn:
            row = await repo.get_credential(conn, credential_id)
        if row is None:
            raise NotFound(f"no credential {credential_id}")
        return self._parse(join_secrets(row.document, self._box.open(row.secrets)))

    async def load_many(
        self, credential_ids: Iterable[str], versions: Mapping[str, datetime] | None = None
    ) -> LoadedCredentials:
        """Ready-to-send credentials by id, and why each unusable one cannot be used (missing
        ids are in neither); cached per version. One bad credential never fails the others.

        ``versions`` (id → ``updated_at``, as a claim read them) spares the database when
        every cached form is current."""
        wanted = set(credential_ids)
        if not wanted:
            return LoadedCredentials({}, {})
        if versions is None or not all(
            i in versions and self._compiled.get(i, (None,))[0] == versions[i] for i in wanted
        ):
            async with self._db.read() as conn:
                current = await repo.versions(conn, wanted)
                stale = [i for i, v in current.items() if self._compiled.get(i, (None,))[0] != v]
                for row in await repo.get_credentials(conn, stale):
                    self._compiled[row.id] = (row.updated_at, self._compile(row))
            wanted = set(current)
        loaded = LoadedCredentials({}, {})
        for credential_id in wanted:
            compiled = self._compiled.get(credential_id)
            if compiled is None:
                continue
            if isinstance(compiled[1], str):
                loaded.unusable[credential_id] = compiled[1]
            else:
                loaded.usable[credential_id] = compiled[1]
        return loaded

    def _compile(self, row: repo.CredentialRow) -> Credential | str:
        """The stored row, ready to send with; or why it cannot be used."""
        secrets: dict[str, str] = {}
        try:
            secrets = self._box.open(row.secrets)
            return self._parse(join_secrets(row.document, secrets))
        except SecretsUnavailable as exc:
            problem = exc.message
        except InvalidInput as exc:
            problem = "; ".join(f"{e.field}: {e.message}" for e in exc.errors[:5]) or exc.message
        except Exception as exc:  # a row no rule of today can even read: still only this one
            problem = f"its stored document cannot be read ({type(exc).__name__})"
        reason = redact(f"credential {row.id} cannot be used: {problem}", secrets.values())
        log.warning("%s", reason)
        return reason

    async def preview(
        self, credential_id: str, *, to: str, sender: str | None, message: str
    ) -> PreviewedRequest:
        """The exact request a send would make, secrets masked. No network."""
        cred = await self.load(credential_id)
        values = MessageValues(
            normalize_phone(to, "to"),
            sender or DEFAULT_TEST_SENDER,
            message,
            message_id="msg_preview",
        )
        request = build_request(cred, values, masked=True)
        return PreviewedRequest(
            method=request.method,
            url=request.url,
            headers=dict(request.headers),
            body=request.body.decode("utf-8"),
        )

    async def test(
        self, credential_id: str, *, to: str, sender: str | None, message: str
    ) -> TestResult:
        """A real send; the verdict carries no provider body and no secret."""
        cred = await self.load(credential_id)
        values = MessageValues(
            normalize_phone(to, "to"),
            sender or DEFAULT_TEST_SENDER,
            message,
            message_id=new_id("msg"),
        )
        secrets = cred.secret_values().values()
        try:
            attempt = await self._gateway.send(cred, values)
        except DeliveryError as exc:
            return TestResult(False, None, None, 0, redact(exc.message, secrets))
        response = attempt.response
        outcome = judge_response(response, cred, self._clock())
        ok = outcome.kind is OutcomeKind.ACCEPTED
        error = None if ok else outcome.reason
        return TestResult(
            ok=ok,
            status_code=response.status,
            provider_message_id=extract_message_id(
                response.body, cred.message_id_path, attempt.secrets
            )
            if ok
            else None,
            latency_ms=round(attempt.latency_ms),
            error=error,
            provider_answer=shown_answer(response.body, (*secrets, *attempt.secrets)),
        )

    async def rotate_secrets(self) -> int:
        """Re-encrypt every credential's secrets under the first key; returns the count."""
        async with self._db.transaction() as conn:
            rows = await repo.all_secret_tokens(conn)
            for credential_id, token in rows:
                await repo.set_secret_token(conn, credential_id, self._box.rotate(token))
        return len(rows)
