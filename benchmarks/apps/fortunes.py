"""TechEmpower's fortunes test without a database: the same 12 rows in memory, one row added
per request, sorted by message, rendered with one Jinja2 template (templates/fortunes.html)
and the same Jinja2 settings by every app.

Jinja2 is imported only by ``environment()``: the apps that render the page import it.
"""

from __future__ import annotations

from operator import itemgetter
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "fortunes.html"

# TechEmpower's Fortune table (toolset/databases), as (id, message).
FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
    (7, "Any program that runs right is obviously correct."),
    (8, "A list is only as strong as its weakest link. — Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "フレームワークのベンチマーク"),
]
ADDED = (0, "Additional fortune added at request time.")
_BY_MESSAGE = itemgetter(1)


def fortunes() -> list[tuple[int, str]]:
    """What one request renders: the table, plus the added row, sorted by message."""
    rows = [*FORTUNES, ADDED]
    rows.sort(key=_BY_MESSAGE)
    return rows


def environment() -> Any:
    """The Jinja2 environment every peer renders with: Cello's settings for App(templates=...)
    outside debug mode (autoescape by extension, no auto-reload, the default cache)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html", "htm", "xml", "jinja")),
        auto_reload=False,
    )


def expected_html() -> str:
    """The page every app must answer (checked before measuring)."""
    return environment().get_template(TEMPLATE).render(fortunes=fortunes())
