"""``--reload`` (development): restart the server whenever a Python source file changes.

The process given ``--reload`` serves nothing itself. It runs its own command line again as a
child process (marked by an environment variable, so the child serves) and watches the app's
directory with ``watchfiles``; on a change it stops the child gracefully and starts a new one.
A fresh process, rather than re-importing in place, is the only way to drop every old module
object. A child that fails to start (a syntax error half-way through an edit) is reported,
and the next change starts it again.

The child runs in its own session, so a terminal's Ctrl-C reaches only this process, which
then stops the child once (it would read two signals as "force").

What ``cello build`` writes into its output directory (generated ``.py``, the mypyc build
tree, the ``.so``) is not a source change: only its ``manifest.json``, written last, restarts
the server, once per finished build, so that the new child serves the compiled router.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from cello.build_artifacts import MANIFEST

if TYPE_CHECKING:
    from watchfiles import Change

log = logging.getLogger("cello.reload")

CHILD_ENV = "CELLO_RELOAD_CHILD"
# Seconds a child gets to stop before it is killed (its own graceful_timeout applies inside).
_STOP_TIMEOUT = 15.0


def is_reloader_child() -> bool:
    return os.environ.get(CHILD_ENV) == "1"


def script_directory() -> Path:
    """The directory of the running script (``python app.py``), else the working directory."""
    main = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if main is not None and main.suffix == ".py" and main.is_file():
        return main.resolve().parent
    return Path.cwd()


def child_command() -> list[str]:
    """This process's command line, to run again: ``python -m cello serve ...``, ``python
    app.py ...`` and the ``cello`` console script all come out as the interpreter plus the
    arguments it was given."""
    argv = list(getattr(sys, "orig_argv", []))
    if len(argv) > 1:
        return [sys.executable, *argv[1:]]
    return [sys.executable, *sys.argv]


def _source_filter(build_dirs: Sequence[Path]) -> Callable[[Change, str], bool]:
    """Changes to Python files, except under ``build_dirs``, where only the manifest counts."""
    from watchfiles import PythonFilter

    python_files = PythonFilter()
    builds = [str(path.resolve()) for path in build_dirs]

    def accept(change: Change, path: str) -> bool:
        for build in builds:
            if path == build or path.startswith(build + os.sep):
                return os.path.basename(path) == MANIFEST
        return python_files(change, path)

    return accept


class _Reloader:
    def __init__(self, command: Sequence[str], paths: Sequence[Path], build_dirs: Sequence[Path]) -> None:
        self.command = list(command)
        self.paths = [str(path) for path in paths]
        self.accept = _source_filter(build_dirs)
        self.stop = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.signals = 0

    def start_child(self) -> None:
        env = dict(os.environ)
        env[CHILD_ENV] = "1"
        self.child = subprocess.Popen(self.command, env=env, start_new_session=True)

    def stop_child(self) -> int | None:
        child = self.child
        if child is None:
            return None
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("the server did not stop within %ss; killing it", _STOP_TIMEOUT)
                child.kill()
                child.wait()
        return child.returncode

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        self.stop.set()
        child = self.child
        if self.signals > 1 and child is not None and child.poll() is None:
            child.kill()  # a second Ctrl-C: do not wait for the graceful stop

    def run(self) -> int:
        from watchfiles import watch

        previous = {signum: signal.signal(signum, self.on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
        reported = False
        try:
            self.start_child()
            log.info("reloading on changes to Python files in %s", ", ".join(self.paths))
            changes_seen = watch(
                *self.paths,
                watch_filter=self.accept,
                stop_event=self.stop,
                yield_on_timeout=True,
                rust_timeout=500,
                raise_interrupt=False,
            )
            for changes in changes_seen:
                if self.stop.is_set():
                    break
                if changes:
                    names = sorted({os.path.relpath(path) for _, path in changes})
                    log.warning("%s changed; restarting", ", ".join(names[:3]) + (" ..." if len(names) > 3 else ""))
                    self.stop_child()
                    self.start_child()
                    reported = False
                elif not reported and self.child is not None and self.child.poll() is not None:
                    reported = True
                    log.error("the server exited with %d; waiting for a change", self.child.returncode)
        finally:
            self.stop_child()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0


def run_with_reload(
    paths: Sequence[Path], build_dirs: Sequence[Path] = (), command: Sequence[str] | None = None
) -> int:
    """Run ``command`` (default: this process's own) as a child, restarting it when a Python
    file under ``paths`` changes, or a build in ``build_dirs`` completes, until SIGINT/SIGTERM;
    the exit status (0 when stopped)."""
    return _Reloader(command if command is not None else child_command(), paths, build_dirs).run()
