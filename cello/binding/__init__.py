"""Typed handlers: parameters bound from the request by their annotations, validated with
msgspec, results encoded by the return annotation; and the OpenAPI document of the routes.

``plan`` reads a signature once, at registration; ``binder`` executes a plan (or ``cello build``
generates the same steps per route); ``typed`` wraps the handler so the pipeline calls it with
the request as it does every handler.
"""

from cello.binding.markers import Body, Cookie, Header, Query

__all__ = ["Body", "Cookie", "Header", "Query"]
