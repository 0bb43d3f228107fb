"""A short soak (benchmarks/soak.py): 3 rounds of 500 mixed operations with random aborts.

Nothing may fail unexpectedly, file descriptors and asyncio tasks must come back to their
baseline after each round, and memory must not creep from round to round.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


def _load_soak() -> Any:
    spec = importlib.util.spec_from_file_location("cello_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cello_soak"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_short_soak(http: str) -> None:
    soak = _load_soak()
    lines: list[str] = []
    results, baseline, code = soak.soak(rounds=3, ops=500, connections=50, http=http, report=lines.append)
    summary = "\n".join(lines) + "\n" + soak.table(results, baseline)
    assert all(r.errors == 0 for r in results), summary
    for r in results:
        assert r.fds <= baseline["fds"], summary
        assert r.tasks <= baseline["tasks"], summary
        assert not any(r.live.values()), summary
    assert results[2].rss_kib <= results[0].rss_kib * 1.10, summary
    assert code == 0, summary
