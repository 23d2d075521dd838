"""The shop's request vocabulary shared by the three services: order lines and idempotency keys."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from fastapi import Header
from pydantic import BaseModel, ConfigDict, Field

from services.kit.problems import Problem

MAX_QUANTITY = 100  # anything above is "absurd" for this shop and rejected as a client error
PRODUCT_ID = r"^p-\d{3}$"
_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=PRODUCT_ID, examples=["p-001"])
    quantity: int = Field(gt=0, le=MAX_QUANTITY, examples=[1])


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", description="8-64 chars of [A-Za-z0-9_-]")] = None,
) -> str:
    """Writes must carry a key so a retry can never act twice (IETF draft-ietf-httpapi-idempotency-key)."""
    if key is None:
        raise Problem(400, "Missing Idempotency-Key", "POST requests need an Idempotency-Key header")
    if not _KEY.match(key):
        raise Problem(400, "Invalid Idempotency-Key", "use 8 to 64 characters from [A-Za-z0-9_-]")
    return key


def derive_id(prefix: str, key: str) -> str:
    """Same key, same id, on every replica, with no shared database."""
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"
