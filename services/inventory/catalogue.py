"""A deterministic catalogue, identical on every replica, so the services stay stateless."""

from __future__ import annotations

from services.kit.shop import Product

_NAMES = (
    "kettle",
    "teapot",
    "mug",
    "saucer",
    "spoon",
    "whisk",
    "ladle",
    "colander",
    "grater",
    "peeler",
    "skillet",
    "wok",
    "trivet",
    "tongs",
    "sieve",
    "funnel",
    "scale",
    "timer",
    "apron",
    "tray",
)


def _seed() -> dict[str, Product]:
    products = {}
    for number, name in enumerate(_NAMES, start=1):
        product_id = f"p-{number:03d}"
        # p-013 is sold out so the "insufficient stock" path is reachable.
        stock = 0 if number == 13 else 5 + (number * 37) % 96
        products[product_id] = Product(id=product_id, name=name, price_cents=250 * number + 99, stock=stock)
    return products


CATALOGUE = _seed()
