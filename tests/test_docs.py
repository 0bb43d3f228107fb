"""Every ```python sample in README.md and docs/ runs (page by page, in order)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_samples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A page runs as a module of its own, as a user's file would: msgspec and typing resolve a
    # model's annotations through sys.modules[cls.__module__].
    module = types.ModuleType("docs_sample")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for number, block in enumerate(BLOCK.findall(page.read_text("utf-8")), 1):
        # dont_inherit: this file's `from __future__ import annotations` is not the sample's.
        code = compile(block, f"{page.name}[{number}]", "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - the docs are ours
