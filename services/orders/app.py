"""orders routes. The order id is derived from the idempotency key, so retries can never double-order."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from starlette.responses import Response

from services.host.app import AppContext, create_app
from services.host.relay import UPSTREAM_FAILURES, relay
from services.kit.settings import OrdersSettings
from services.kit.shop import IDEMPOTENT_WRITE, ORDER_PROBLEMS, Order, OrderLine, derive_id, idempotency_key


def routes(context: AppContext) -> APIRouter:
    router = APIRouter(tags=["orders"])

    @router.post(
        "/orders",
        status_code=201,
        response_model=Order,
        openapi_extra=IDEMPOTENT_WRITE,
        responses={**ORDER_PROBLEMS, **UPSTREAM_FAILURES},
    )
    async def place_order(line: OrderLine, key: Annotated[str, Depends(idempotency_key)]) -> Response:
        reservation = await context.client("inventory").request(
            "POST",
            "/reservations",
            json_body=line.model_dump(),
            headers={"Idempotency-Key": key},
            idempotent=True,
        )
        if reservation.status != 201:
            return relay(reservation, "inventory", "/orders")
        reserved = reservation.json()
        order = Order(
            order_id=derive_id("o", key),
            product_id=line.product_id,
            quantity=line.quantity,
            reservation_id=reserved["reservation_id"],
        )
        return Response(order.model_dump_json(), status_code=201, media_type="application/json")

    return router


def build_app(settings: OrdersSettings) -> FastAPI:
    return create_app(
        settings,
        {"inventory": settings.inventory_url},
        routes,
        "Places orders; reserves stock at inventory. Idempotent by Idempotency-Key.",
    )


SETTINGS = OrdersSettings
