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
