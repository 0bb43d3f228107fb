"""Every ```python sample in README.md and docs/ runs (page by page, in order)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_samples_run(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": "docs_sample"}
    for number, block in enumerate(BLOCK.findall(page.read_text("utf-8")), 1):
        # dont_inherit: a sample runs as its reader's module would, without this file's
        # `from __future__ import annotations` (msgspec could not resolve a sample's Struct).
        code = compile(block, f"{page.name}[{number}]", "exec", dont_inherit=True)
        exec(code, namespace)  # noqa: S102 - the docs are ours
