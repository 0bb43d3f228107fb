"""Data shared by every benchmark app, so that all frameworks answer exactly the same.

Plain Python with no imports beyond the standard library: each app imports it from its
own directory (the servers run with ``benchmarks/apps`` as the working directory).
"""

from __future__ import annotations

HELLO = {"message": "Hello, world!"}

# The 100-route app: /r0/items/{id} ... /r99/items/{id}; wrk cycles over the last 10.
ROUTE_COUNT = 100


def route_paths(last: int = 10, ids: int = 7) -> list[str]:
    """The request paths the 100-route benchmark cycles over (the last ``last`` routes)."""
    return [f"/r{r}/items/{i + 1}" for r in range(ROUTE_COUNT - last, ROUTE_COUNT) for i in range(ids)]


def _big_document() -> dict[str, object]:
    """A ~20 KB JSON document: a page of 72 user records with nested objects and lists."""
    users = []
    for i in range(72):
        users.append(
            {
                "id": i,
                "username": f"user{i:03d}",
                "email": f"user{i:03d}@example.com",
                "active": i % 3 != 0,
                "score": round(i * 1.618, 3),
                "tags": ["alpha", "beta", "gamma", "delta"][: 1 + i % 4],
                "address": {"street": f"{i} Main Street", "city": "Springfield", "zip": f"{10000 + i}"},
                "roles": [{"name": "reader", "since": "2024-01-01"}, {"name": "writer", "since": "2025-06-15"}],
            }
        )
    return {"page": 1, "per_page": 72, "total": 72, "users": users}


BIG = _big_document()

# The POST /echo body: ~1 KiB of JSON, parsed by the app and sent back.
ECHO_BODY = {
    "id": 12345,
    "name": "echo benchmark",
    "active": True,
    "ratio": 0.75,
    "tags": [f"tag{i}" for i in range(20)],
    "items": [{"sku": f"SKU-{i:04d}", "qty": i, "price": round(i * 2.5, 2)} for i in range(12)],
    "note": "x" * 304,
}

# The typed-handler endpoints. POST /orders: an order with a customer and 10 line items, which
# each app validates into its typed models (constraints: non-empty strings, quantity >= 1,
# unit_price > 0) and answers with a summary computed from them. Prices are multiples of 0.25,
# so the total is exact in binary floating point and every app prints the same number.
_LINE_ITEMS = [
    {
        "sku": f"SKU-{i:04d}",
        "quantity": 1 + i % 4,
        "unit_price": 2.5 + i * 1.25,
        "options": ["gift-wrap", "express"][: i % 3],
    }
    for i in range(10)
]
ORDER = {
    "id": 1001,
    "customer": {"id": 7, "name": "Ada Lovelace", "email": "ada@example.com"},
    "items": _LINE_ITEMS,
    "note": "leave at the door",
}
ORDER_SUMMARY = {
    "id": 1001,
    "items": len(_LINE_ITEMS),
    "total": sum(item["quantity"] * item["unit_price"] for item in _LINE_ITEMS),
}

# GET /items/{id}?limit=..&q=..: an int path parameter and two query parameters (limit an int
# in 1..100, default 20; q an optional string), echoed back.
ITEM_QUERY = "limit=10&q=abc"
ITEM = {"id": 42, "limit": 10, "q": "abc"}
