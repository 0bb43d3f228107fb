"""The OpenAPI 3.1 document of an app's routes (``document``), the JSON Schemas of the types
typed handlers declare (``schemas``), and what ``app.openapi()`` serves (``site``, ``ui``)."""

from __future__ import annotations

import json
from typing import Any

from cello.openapi.document import Info, build_document


def render(document: dict[str, Any]) -> str:
    """The document as ``cello openapi`` writes and the app serves it: indented, keys sorted,
    a final newline; the same routes always give the same text, so a committed copy diffs cleanly."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


__all__ = ["Info", "build_document", "render"]
