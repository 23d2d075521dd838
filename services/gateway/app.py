"""gateway routes: thin relays, so the measured cost is the hop and the resilience stack, not logic."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path
from starlette.responses import Response

from services.host.app import AppContext, create_app
from services.host.relay import UPSTREAM_FAILURES, relay
from services.kit.settings import GatewaySettings
from services.kit.shop import (
    IDEMPOTENT_WRITE,
    ORDER_PROBLEMS,
    PRODUCT_ID,
    UNKNOWN_PRODUCT,
    Order,
    OrderLine,
    Product,
    ProductList,
    idempotency_key,
)


def routes(context: AppContext) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["shop"])

    @router.get("/products", responses={200: {"model": ProductList}, **UPSTREAM_FAILURES})
    async def list_products() -> Response:
        return relay(await context.client("inventory").request("GET", "/products"), "inventory", "/api/products")

    @router.get("/products/{product_id}", responses={200: {"model": Product}, **UNKNOWN_PRODUCT, **UPSTREAM_FAILURES})
    async def get_product(product_id: Annotated[str, Path(pattern=PRODUCT_ID)]) -> Response:
        path = f"/products/{product_id}"
        return relay(await context.client("inventory").request("GET", path), "inventory", "/api" + path)

    @router.post(
        "/orders",
        status_code=201,
        openapi_extra=IDEMPOTENT_WRITE,
        responses={201: {"model": Order}, **ORDER_PROBLEMS, **UPSTREAM_FAILURES},
    )
    async def place_order(line: OrderLine, key: Annotated[str, Depends(idempotency_key)]) -> Response:
        response = await context.client("orders").request(
            "POST", "/orders", json_body=line.model_dump(), headers={"Idempotency-Key": key}, idempotent=True
        )
        return relay(response, "orders", "/api/orders")

    return router


def build_app(settings: GatewaySettings) -> FastAPI:
    urls = {"inventory": settings.inventory_url, "orders": settings.orders_url}
    return create_app(settings, urls, routes, "Edge API of the shop: products and orders.")


SETTINGS = GatewaySettings
