"""Jinja2 templates: the app's environment, its context processors, and rendering.

``App(templates="templates")`` makes one :class:`Templates` per app; the Jinja2 environment
is created on the first render (an app that renders nothing never builds one). A directory
given relative is taken from the directory of the module that created the app (as Flask
takes its ``root_path``), so ``python app.py`` and ``cello serve app:app`` from elsewhere find
the same files.

Jinja2 itself is imported on the first render (cello/_jinja.py, which also makes escaping
faster): an app that renders nothing, and the route runtime, never load it.

Rendering is synchronous: Jinja2's sync render is cheaper than its async one and a template
that only formats values does no I/O. ``render_async`` renders with a second, async
environment (created on first use, same loader and settings) for templates that await
(async functions called from the template, async iterables in ``for``).

``Response.template(...)`` returns a response that the handler chain finishes with the
serving app's ``Templates`` (cello.response.Deferred), so the response layer never needs
to know the app, and routes that render nothing pay nothing.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

ContextProcessor = Callable[..., Mapping[str, Any]]
UrlFor = Callable[..., str]


class _RequestUrlFor:
    """``url_for`` as templates see it: the app's, plus ``_external=True`` for an absolute
    URL with the scheme and host of the request being answered."""

    __slots__ = ("_url_for", "_request")

    def __init__(self, url_for: UrlFor, request: Any) -> None:
        self._url_for = url_for
        self._request = request

    def __call__(self, name: str, /, _external: bool = False, _anchor: str | None = None, **params: Any) -> str:
        base = None
        if _external:
            if self._request is None:
                raise RuntimeError(f"url_for({name!r}, _external=True) needs a request for its scheme and host")
            base = self._request
        return self._url_for(name, _anchor=_anchor, _base=base, **params)


class Templates:
    """One app's templates: its Jinja2 environment, context processors and rendering."""

    def __init__(self, directory: str | os.PathLike[str] | None, root: Path, debug: bool, url_for: UrlFor) -> None:
        self.directory: Path | None = None if directory is None else root / directory
        self._debug = debug
        self._url_for = url_for
        self._processors: list[tuple[ContextProcessor, bool]] = []
        self._env: jinja2.Environment | None = None
        self._async_env: jinja2.Environment | None = None
        # cello._jinja.render, set with the environment (Jinja2 loads with it).
        self._render: Callable[[jinja2.Template, dict[str, Any]], str] = _not_loaded
        # Outside debug mode, name -> compiled template: one dict lookup per render instead of
        # Jinja2's locked LRU cache (what get_template consults, with a weakref per call).
        self._loaded: dict[str, jinja2.Template] = {}

    # -- the environment ----------------------------------------------------------------

    @property
    def environment(self) -> jinja2.Environment:
        """The Jinja2 environment (created on first use): add filters, tests and globals here."""
        env = self._env
        if env is None:
            env = self._env = self._create(enable_async=False)
        return env

    def _create(self, enable_async: bool) -> jinja2.Environment:
        if self.directory is None:
            raise RuntimeError("this app has no templates: App(templates=None)")
        # Jinja2 loads here, on the first render: apps that render nothing never import it.
        from cello import _jinja

        self._render = _jinja.render
        return _jinja.create_environment(self.directory, self._debug, enable_async, self._url_for)

    def set_debug(self, debug: bool) -> None:
        """Follow ``app.debug``: keep the environment (and the filters added to it)."""
        self._debug = debug
        self._loaded.clear()
        for env in (self._env, self._async_env):
            if env is not None:
                env.auto_reload = debug

    # -- context ------------------------------------------------------------------------

    def context_processor(self, fn: ContextProcessor) -> ContextProcessor:
        """Call ``fn(request)`` (or ``fn()``) at every render and add the mapping it returns to
        the template's context; the handler's own context wins over it."""
        self._processors.append((fn, _takes_request(fn)))
        return fn

    def context(self, context: Mapping[str, Any], request: Any) -> dict[str, Any]:
        values: dict[str, Any] = {"request": request, "url_for": _RequestUrlFor(self._url_for, request)}
        for fn, wants_request in self._processors:
            extra = fn(request) if wants_request else fn()
            if extra:
                values.update(extra)
        values.update(context)
        return values

    # -- rendering ----------------------------------------------------------------------

    def render(self, name: str, context: dict[str, Any], request: Any) -> str:
        """``name`` rendered with ``context``, the request and the context processors' values."""
        template = self._loaded.get(name)
        if template is None:
            template = self._get(self.environment, name)
            if not self._debug:
                self._loaded[name] = template
        try:
            return self._render(template, self.context(context, request))
        except Exception as exc:
            located = _located(exc)
            if located is exc:
                raise
            raise located from None

    async def render_async(self, name: str, context: dict[str, Any], request: Any) -> str:
        """Like ``render``, with Jinja2's async mode: the template may await."""
        env = self._async_env
        if env is None:
            env = self._async_env = self._create(enable_async=True)
            # Share what users added to the sync environment.
            if self._env is not None:
                env.filters.update(self._env.filters)
                env.tests.update(self._env.tests)
                env.globals.update(self._env.globals)
        template = self._get(env, name)
        try:
            return await template.render_async(self.context(context, request))
        except Exception as exc:
            located = _located(exc)
            if located is exc:
                raise
            raise located from None

    def _get(self, env: jinja2.Environment, name: str) -> jinja2.Template:
        # Loaded by _create already (an environment exists): a lookup in sys.modules.
        from cello import _jinja

        assert self.directory is not None  # there is an environment
        return _jinja.get_template(env, name, self.directory)


def _located(exc: Exception) -> Exception:
    """A syntax error (of an included template, met while rendering) with its file and line
    in its message; any other error as it is."""
    # Only when a render failed, so after _create loaded it.
    from cello import _jinja

    return _jinja.located(exc) if isinstance(exc, _jinja.TemplateSyntaxError) else exc


def __getattr__(name: str) -> Any:
    # Public names that are Jinja2 classes, without importing Jinja2 before they are used.
    if name == "TemplateNotFound":
        # Jinja2's class, subclassed: loaded when asked for.
        from cello._jinja import TemplateNotFound

        return TemplateNotFound
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _takes_request(fn: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)


def _not_loaded(template: jinja2.Template, values: dict[str, Any]) -> str:
    raise RuntimeError("a template rendered before the environment was created")  # pragma: no cover
