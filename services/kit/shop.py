"""The shop's vocabulary shared by the three services: what a client sends (order lines, idempotency keys) and
the answers it gets back, so the gateway documents the same shapes that inventory and orders produce."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

from fastapi import Header
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.kit.problems import Problem

MAX_QUANTITY = 100  # anything above is "absurd" for this shop and rejected as a client error
# ASCII digits only: `\d` would also take other scripts' digits, which the documented pattern does not.
PRODUCT_ID = r"^p-[0-9]{3}$"
IDEMPOTENCY_KEY = r"^[A-Za-z0-9_-]{8,64}$"
_KEY = re.compile(IDEMPOTENCY_KEY)


def _json_integer(value: object) -> object:
    """JSON Schema's integer: 2 and 2.0 are, `true` and "2" are not (pydantic alone would take all four)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=PRODUCT_ID, examples=["p-001"])
    quantity: Annotated[int, BeforeValidator(_json_integer)] = Field(gt=0, le=MAX_QUANTITY, examples=[1])


class Product(BaseModel):
    id: str = Field(examples=["p-001"])
    name: str
    price_cents: int
    stock: int


class ProductList(BaseModel):
    items: list[Product]
    count: int


class Reservation(BaseModel):
    reservation_id: str
    product_id: str
    quantity: int
    status: str = "reserved"


class Order(BaseModel):
    order_id: str
    product_id: str
    quantity: int
    reservation_id: str
    status: str = "confirmed"


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)] = None,
) -> str:
    """Writes must carry a key so a retry can never act twice (IETF draft-ietf-httpapi-idempotency-key).

    The header is checked here, not by FastAPI, so a missing or malformed key is a 400 that says which;
    `IDEMPOTENT_WRITE` documents it as the required parameter it is.
    """
    if key is None:
        raise Problem(400, "Missing Idempotency-Key", "POST requests need an Idempotency-Key header")
    if not _KEY.fullmatch(key):
        raise Problem(400, "Invalid Idempotency-Key", "use 8 to 64 characters from [A-Za-z0-9_-]")
    return key


#: `openapi_extra` of a route that depends on `idempotency_key`: the header as the contract states it.
IDEMPOTENT_WRITE: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": True,
            "description": "8-64 chars of [A-Za-z0-9_-]; the same key replays the first answer",
            "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY, "example": "order-0001"},
        }
    ]
}
#: The `responses` of a route that looks a product up (inventory does; the gateway relays its answer).
UNKNOWN_PRODUCT: dict[int | str, dict[str, Any]] = {404: {"description": "unknown product"}}
#: The `responses` of a route that takes an order line and its key: what inventory refuses it for, relayed as
#: it is by orders and the gateway.
ORDER_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "missing or invalid Idempotency-Key"},
    **UNKNOWN_PRODUCT,
    409: {"description": "insufficient stock"},
    422: {"description": "the Idempotency-Key was used before for a different order line"},
}


def derive_id(prefix: str, key: str) -> str:
    """Same key, same id, on every replica, with no shared database."""
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"
