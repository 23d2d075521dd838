"""inventory routes. Reservations are idempotent per replica: a replayed key returns the first answer."""

from __future__ import annotations

from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path
from prometheus_client import Counter
from starlette.responses import JSONResponse

from services.host.app import AppContext, create_app
from services.inventory.catalogue import CATALOGUE
from services.kit.problems import Problem
from services.kit.settings import InventorySettings
from services.kit.shop import (
    IDEMPOTENT_WRITE,
    ORDER_PROBLEMS,
    PRODUCT_ID,
    UNKNOWN_PRODUCT,
    OrderLine,
    Product,
    ProductList,
    Reservation,
    derive_id,
    idempotency_key,
)

RESERVATIONS = Counter("reservations_created", "Reservations made for a key seen for the first time")
REPLAYS = Counter("reservations_replayed", "Reservations answered from the idempotency cache")
_SEEN_LIMIT = 100_000


_REPLAYED = {
    "description": "`true` when this answer replays the first one for the same key",
    "schema": {"type": "string"},
}
_RESERVED = {"model": Reservation, "description": "reserved", "headers": {"Idempotent-Replayed": _REPLAYED}}


def routes(context: AppContext) -> APIRouter:
    router = APIRouter(tags=["inventory"])
    seen: OrderedDict[str, OrderLine] = OrderedDict()
    everything = ProductList(items=list(CATALOGUE.values()), count=len(CATALOGUE))

    def lookup(product_id: str) -> Product:
        product = CATALOGUE.get(product_id)
        if product is None:
            raise Problem(404, "Unknown product", f"no product {product_id!r}", product_id=product_id)
        return product

    @router.get("/products")
    async def list_products() -> ProductList:
        return everything

    @router.get("/products/{product_id}", responses=UNKNOWN_PRODUCT)
    async def get_product(product_id: Annotated[str, Path(pattern=PRODUCT_ID)]) -> Product:
        return lookup(product_id)

    @router.post(
        "/reservations",
        status_code=201,
        openapi_extra=IDEMPOTENT_WRITE,
        responses={201: _RESERVED, **ORDER_PROBLEMS},
    )
    async def reserve(line: OrderLine, key: Annotated[str, Depends(idempotency_key)]) -> JSONResponse:
        product = lookup(line.product_id)
        previous = seen.get(key)
        if previous is not None and previous != line:
            raise Problem(422, "Idempotency key reused", "this key was used for a different reservation")
        if line.quantity > product.stock:
            raise Problem(409, "Insufficient stock", f"{product.stock} of {product.id} in stock", stock=product.stock)
        body = Reservation(reservation_id=derive_id("r", key), product_id=product.id, quantity=line.quantity)
        headers = {}
        if previous is None:
            seen[key] = line
            if len(seen) > _SEEN_LIMIT:
                seen.popitem(last=False)
            RESERVATIONS.inc()
        else:
            REPLAYS.inc()
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(body.model_dump(), status_code=201, headers=headers)

    return router


def build_app(settings: InventorySettings) -> FastAPI:
    return create_app(settings, {}, routes, "Seeded catalogue with stock; idempotent reservations.")


SETTINGS = InventorySettings
