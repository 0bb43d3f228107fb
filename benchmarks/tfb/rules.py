"""What every TechEmpower app of this directory shares: TFB's rules (the statements, the
clamping of `queries`/`count`, the added fortune, the id range), the database settings
(`TFB_DSN`, `TFB_POOL_SIZE`; the pool itself is dbpool.py) and the fortunes template with Cello's
Jinja2 settings (benchmarks/apps/templates/fortunes.html, also rendered by benchmarks/run.py).
Each app keeps its framework's own code: routing, parameters, responses, start-up hooks.
"""

from __future__ import annotations

import os
from operator import itemgetter
from pathlib import Path
from typing import Any

DSN = os.environ.get("TFB_DSN", "postgresql://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world")
POOL_SIZE = int(os.environ.get("TFB_POOL_SIZE", "16"))

READ_ROW = "SELECT randomnumber FROM world WHERE id = $1"
READ_WORLD = "SELECT id, randomnumber FROM world"  # once, at start-up, for cached-queries
READ_FORTUNES = "SELECT id, message FROM fortune"
# One statement writes the whole batch (TFB allows batched updates; the reads stay one per row).
WRITE_ROWS = (
    "UPDATE world SET randomnumber = new.randomnumber "
    "FROM unnest($1::int[], $2::int[]) AS new(id, randomnumber) WHERE world.id = new.id"
)
ADDED_FORTUNE = (0, "Additional fortune added at request time.")
by_message = itemgetter(1)
IDS = range(1, 10_001)

TEMPLATES = Path(__file__).resolve().parent.parent / "apps" / "templates"
TEMPLATE = "fortunes.html"


def clamp(queries: str) -> int:
    """TFB's rule for `queries` and `count`: not an integer -> 1, then clamped to 1..500."""
    try:
        value = int(queries)
    except ValueError:
        return 1
    return min(max(value, 1), 500)


def jinja_environment() -> Any:
    """Cello's Jinja2 settings for App(templates=...), for the peers that render themselves or
    hand an environment to their framework's integration."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html", "htm", "xml", "jinja")),
        auto_reload=False,
    )
