"""Swagger UI, served by the app itself: the page, and its script and stylesheet from the
``swagger-ui-bundle-v2`` package (Swagger UI's own dist files; installed with
``pip install 'cello-framework[openapi]'``). Nothing is loaded from a CDN, so the page works
offline and under a strict ``connect-src``/``script-src 'self'`` policy.

Swagger UI 5 is the first to render OpenAPI 3.1; the original ``swagger-ui-bundle`` package
ships 4.15, which refuses a 3.1 document, hence the maintained fork.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
from pathlib import Path
from typing import Final

PACKAGE: Final = "swagger_ui_bundle"
DISTRIBUTION: Final = "swagger-ui-bundle-v2"

# The files the page loads, and their content types; nothing else of the package is served.
ASSETS: Final[dict[str, str]] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

_VERSIONED: Final = re.compile(r"swagger-ui-(\d+)\.(\d+)\.(\d+)$")


class SwaggerUIMissing(ImportError):
    """The package with Swagger UI's files is not installed."""


def assets_dir() -> Path:
    """The directory of Swagger UI's dist files (the newest, should several versions be installed)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    found: list[tuple[tuple[int, ...], Path]] = []
    for location in locations:
        for candidate in (Path(location) / "vendor").glob("swagger-ui-*"):
            match = _VERSIONED.match(candidate.name)
            if match and all((candidate / name).is_file() for name in ASSETS):
                found.append((tuple(int(part) for part in match.groups()), candidate))
    if not found:
        raise SwaggerUIMissing(
            f"the Swagger UI page needs the {DISTRIBUTION} package: pip install 'cello-framework[openapi]' "
            "(or pass docs=None to app.openapi() to serve only the JSON document)"
        )
    return max(found)[1]


def page(title: str, document_url: str, assets_url: str) -> str:
    """The HTML page that runs Swagger UI on the document at ``document_url``."""
    config = {
        "url": document_url,
        "dom_id": "#swagger-ui",
        "deepLinking": True,
        "layout": "BaseLayout",
    }
    # Inside <script>, "</" would end the element: JSON allows escaping it.
    config_js = json.dumps(config, sort_keys=True).replace("</", "<\\/")
    base = html.escape(assets_url.rstrip("/"), quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{base}/swagger-ui.css">
<link rel="icon" type="image/png" href="{base}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script>
const config = {config_js};
config.presets = [SwaggerUIBundle.presets.apis];
window.ui = SwaggerUIBundle(config);
</script>
</body>
</html>
"""
