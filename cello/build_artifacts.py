"""Reading what ``cello build`` wrote and attaching the compiled router to an app.

Runtime side only: it reads ``build/manifest.json`` and loads the module it names through
:mod:`cello.routing.loader`. Producing a build is :mod:`cello.codegen`'s job.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cello.routing.loader import load_compiled

if TYPE_CHECKING:
    from cello.app import App

log = logging.getLogger("cello")

MANIFEST = "manifest.json"


class BuildError(Exception):
    """The build cannot be used and the caller asked for a compiled router."""


@dataclass
class Manifest:
    app: str
    fingerprint: str
    artifact: str
    compiled: bool
    python_tag: str
    route_count: int
    routes: list[list[str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "app": self.app,
            "fingerprint": self.fingerprint,
            "artifact": self.artifact,
            "compiled": self.compiled,
            "python_tag": self.python_tag,
            "route_count": self.route_count,
            "routes": self.routes,
            "timings": self.timings,
            **self.extra,
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def read_manifest(build_dir: Path) -> Manifest | None:
    path = build_dir / MANIFEST
    if not path.is_file():
        return None
    data = json.loads(path.read_text("utf-8"))
    known = {"app", "fingerprint", "artifact", "compiled", "python_tag", "route_count", "routes", "timings"}
    return Manifest(
        app=str(data["app"]),
        fingerprint=str(data["fingerprint"]),
        artifact=str(data["artifact"]),
        compiled=bool(data["compiled"]),
        python_tag=str(data.get("python_tag", "")),
        route_count=int(data.get("route_count", 0)),
        routes=list(data.get("routes", [])),
        timings=dict(data.get("timings", {})),
        extra={k: v for k, v in data.items() if k not in known},
    )


def attach_build(app: App, build_dir: Path, require: bool = False, reference: str | None = None) -> bool:
    """Use the compiled router from ``build_dir`` if it matches ``app``'s routes.

    On any mismatch: one warning line and the interpreted router, or BuildError when
    ``require`` is set. Returns whether the compiled router is in use. ``reference`` is how
    the user named the app (``module:attr``, ``file.py``), for the command the warning suggests.
    """
    manifest = read_manifest(build_dir)
    if manifest is None:
        return _refuse(f"no build found in {build_dir}/ (run `cello build`)", require, quiet=True)
    expected = app.fingerprint()
    if manifest.fingerprint != expected:
        out = "" if build_dir == Path("build") else f" --out {build_dir}"
        if reference is not None and not _same_app(reference, manifest.app):
            reason = f"the build in {build_dir}/ is for {manifest.app}, not {reference}"
        else:
            reason = (
                f"routes changed since the build in {build_dir}/ "
                f"(fingerprint {manifest.fingerprint[:12]} != {expected[:12]})"
            )
        return _refuse(f"{reason}; run `cello build {reference or manifest.app}{out}` again", require)
    artifact = build_dir / manifest.artifact
    result = load_compiled(artifact, expected, len(app.routes()))
    if result.dispatch is None:
        return _refuse(f"cannot use {artifact}: {result.reason}", require)
    if not manifest.compiled and require:
        raise BuildError(f"{artifact} is the generated .py, not a compiled module (build without --no-compile)")
    app.use_compiled(expected, result.dispatch, artifact.name, result.binders)
    return True


def _same_app(first: str, second: str) -> bool:
    """Whether two app references (``pkg.mod:app``, ``mod``, ``dir/file.py:name``) name the
    same app, as ``cello`` resolves them from the working directory."""

    def key(reference: str) -> tuple[str, str]:
        target, _, attr = reference.partition(":")
        path = Path(target) if target.endswith(".py") else Path(*target.split(".")).with_suffix(".py")
        if path.is_file():  # `hello` and `hello.py` are one module
            target = str(path.resolve())
        return target, attr or "app"

    return key(first) == key(second)


def _refuse(reason: str, require: bool, quiet: bool = False) -> bool:
    if require:
        raise BuildError(reason)
    if quiet:
        log.info("%s; using the interpreted router", reason)
    else:
        log.warning("%s; using the interpreted router", reason)
    return False
