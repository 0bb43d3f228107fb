"""What ``app.openapi()`` serves: the JSON document, and the Swagger UI page with its assets.

These routes are registered like any other (so they show in ``cello routes`` and are compiled
by ``cello build``), and left out of the document they serve.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cello.blueprint import Registrar, join_path
from cello.endpoints import RouteEntry
from cello.openapi import ui
from cello.openapi.document import Info
from cello.request import Request
from cello.response import Response


class ApiDocs:
    """The document's info and where it and its UI are served."""

    def __init__(self, info: Info, path: str, docs: str | None) -> None:
        self.info = info
        self.path = path
        self.docs = docs
        # Looked up now, so a missing package fails app.openapi() and not the first visit of the page.
        self.assets: Path | None = ui.assets_dir() if docs is not None else None
        self._handlers: set[Callable[..., Any]] = set()

    def owns(self, entry: RouteEntry) -> bool:
        """Whether ``entry`` is one of the routes serving the documentation."""
        return entry.spec.handler in self._handlers

    def install(self, registrar: Registrar, document: Callable[[], bytes]) -> None:
        """Register GET ``path`` (the document, from ``document()``) and the UI's routes."""

        def openapi_document(request: Request) -> Response:
            return Response(document(), content_type="application/json")

        self._add(registrar, self.path, "openapi", openapi_document)
        if self.docs is None or self.assets is None:
            return
        html = ui.page(self.info.title, self.path, self.docs).encode()

        def openapi_docs(request: Request) -> Response:
            return Response(html, content_type="text/html; charset=utf-8")

        self._add(registrar, self.docs, "openapi_docs", openapi_docs)
        for name, content_type in ui.ASSETS.items():
            asset = _asset(self.assets / name, content_type)
            self._add(registrar, join_path(self.docs, name), f"openapi_docs:{name}", asset)

    def _add(self, registrar: Registrar, path: str, name: str, handler: Callable[[Request], Response]) -> None:
        self._handlers.add(handler)
        registrar.get(path, name=name)(handler)


def _asset(path: Path, content_type: str) -> Callable[[Request], Response]:
    def openapi_asset(request: Request) -> Response:
        # A file response: ETag, Last-Modified and conditional requests come with it.
        return Response.file(path, content_type=content_type)

    return openapi_asset
