"""Profiles in and out, and the report of an import."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from smsbridge.api.schemas.base import JsonObject, Strict


class ProfileIn(Strict):
    external_id: str | None = Field(None, description="optional; must equal the id in the URL")
    phone: str = Field(examples=["+33612345678"])
    attributes: JsonObject = Field(default_factory=dict, examples=[{"firstName": "Ana"}])
    timezone: str | None = Field(None, examples=["Europe/Paris"])


class ProfileOut(BaseModel):
    external_id: str
    phone: str
    attributes: dict[str, Any]
    timezone: str | None
    created_at: datetime
    updated_at: datetime


class ProfileList(BaseModel):
    items: list[ProfileOut]
    next_cursor: str | None


class ImportProblem(BaseModel):
    line: int
    field: str | None
    message: str


class ImportOut(BaseModel):
    imported: int = Field(description="profiles created or updated")
    lines: int
    error_count: int = Field(description="all problems; `errors` lists the first 1,000")
    errors: list[ImportProblem]
