"""The test apps' compiled routers, built with the real `cello build` command.

`make test` builds them before pytest (`python tests/support/artifacts.py`): the documented
way to produce compiled artifacts in CI. This module imports nothing of the test support, so
it runs as a script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Compiled routers are ABI-specific: `make test-all` gives each Python its own root here, so
# that one version's run does not rebuild (and clobber) another's.
BUILD = ROOT / (os.environ.get("CELLO_TEST_BUILD") or "build/tests")

# Every test app served with the compiled router.
TEST_APPS = [
    "tests/apps/basic.py",
    "tests/apps/debug_errors.py",
    "tests/apps/debug_errors.py:custom",
    "tests/apps/seed_blueprints.py",
    "tests/apps/layered.py",
    "tests/apps/middleware_app.py",
    "tests/apps/streams.py",
    "tests/apps/uploads.py",
    "tests/apps/typed.py",
    "tests/apps/ws.py",
    "tests/apps/channels_app.py",
    "tests/apps/channels_flood.py",
    "tests/apps/openapi_app.py",
    "tests/apps/after.py",
    "tests/apps/sessions_app.py",
    "tests/apps/pages.py",
    "tests/apps/metrics_app.py",
    "tests/apps/request_ids.py",
    "examples/rest.py",
]


def build_dir(app_ref: str) -> Path:
    name = app_ref.replace("/", "_").replace(".py", "").replace(":", "_")
    return BUILD / name


def ensure_build(app_ref: str) -> Path:
    """Build the app's compiled router unless CI (or an earlier run) already did."""
    out = build_dir(app_ref)
    check = subprocess.run(
        [sys.executable, "-m", "cello", "build", app_ref, "--out", str(out), "--check"],
        cwd=ROOT,
        capture_output=True,
    )
    if check.returncode != 0:
        subprocess.run([sys.executable, "-m", "cello", "build", app_ref, "--out", str(out)], cwd=ROOT, check=True)
    return out


def build_all(app_refs: list[str] | None = None) -> None:
    for app_ref in app_refs or TEST_APPS:
        out = build_dir(app_ref)
        subprocess.run([sys.executable, "-m", "cello", "build", app_ref, "--out", str(out)], cwd=ROOT, check=True)


if __name__ == "__main__":
    build_all(sys.argv[1:] or None)
