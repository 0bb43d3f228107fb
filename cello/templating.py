"""Jinja2 templates: the app's environment, its context processors, and rendering.

``App(templates="templates")`` makes one :class:`Templates` per app; the Jinja2 environment
is created on the first render (an app that renders nothing never builds one). A directory
given relative is taken from the directory of the module that created the app (as Flask
takes its ``root_path``), so ``python app.py`` and ``cello serve app:app`` from elsewhere find
the same files.

Escaping: a compiled template writes each ``{{ value }}`` through ``escape(value)``; Cello's
templates get an ``escape`` that gives the same text as markupsafe's without wrapping every
value in a ``Markup`` first (a Python-level ``__new__`` per value): that wrapper is thrown
away at once, since the output is joined into one string. Measured on TechEmpower's fortunes
page it halves the render time. Values with ``__html__`` (Markup) are still taken as safe.

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
from typing import Any

import jinja2

try:  # markupsafe's C escaper: str in, escaped str out.
    from markupsafe._speedups import _escape_inner
except ImportError:  # pragma: no cover - markupsafe without its compiled speedups, or older

    def _escape_inner(s: str, /) -> str:
        # markupsafe's replacements, in its order ("&" first).
        return (
            s.replace("&", "&amp;")
            .replace(">", "&gt;")
            .replace("<", "&lt;")
            .replace("'", "&#39;")
            .replace('"', "&#34;")
        )


# Autoescape by file name: what browsers parse as markup.
AUTOESCAPE_EXTENSIONS = ("html", "htm", "xml", "jinja")

ContextProcessor = Callable[..., Mapping[str, Any]]
UrlFor = Callable[..., str]


def _escape(value: Any) -> str:
    """markupsafe.escape's text, returned as str: the template joins it into its output."""
    kind = type(value)
    if kind is str:
        return _escape_inner(value)
    if kind is int:
        return str(value)  # digits and "-": nothing to escape
    html = getattr(value, "__html__", None)
    if html is not None:
        return str(html())
    return _escape_inner(str(value))


class _Template(jinja2.Template):
    """A template whose output expressions escape with ``_escape``."""

    @classmethod
    def _from_namespace(cls, environment: jinja2.Environment, namespace: Any, globals: Any) -> jinja2.Template:
        # The compiled module's functions look ``escape`` up in this namespace when they run.
        namespace["escape"] = _escape
        return super()._from_namespace(environment, namespace, globals)


class TemplateNotFound(jinja2.TemplateNotFound):
    """A template is not in the app's template directory: the message names the template,
    the directory looked in, and whether that directory exists."""


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
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.directory),
            autoescape=jinja2.select_autoescape(AUTOESCAPE_EXTENSIONS),
            # Debug: every render checks the file's mtime and recompiles a changed template.
            # Otherwise a template is compiled once and kept (Jinja2's cache, 400 templates).
            auto_reload=self._debug,
            enable_async=enable_async,
        )
        env.template_class = _Template
        # For templates rendered outside a request, and macros imported without context.
        env.globals["url_for"] = self._url_for
        return env

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
            return template.render(self.context(context, request))
        except jinja2.TemplateSyntaxError as exc:
            raise _located(exc) from None

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
        except jinja2.TemplateSyntaxError as exc:
            raise _located(exc) from None

    def _get(self, env: jinja2.Environment, name: str) -> jinja2.Template:
        try:
            return env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise _located(exc) from None
        except jinja2.TemplateNotFound as exc:
            if exc.name != name:
                raise  # an {% include %} or {% extends %} of the template is missing
            directory = self.directory
            missing = ""
            if directory is None or not directory.is_dir():
                missing = " (no such directory: App(templates=...) names it, relative to the app's module)"
            raise TemplateNotFound(name, f"template {name!r} not found in {directory}{missing}") from None


def _located(exc: jinja2.TemplateSyntaxError) -> jinja2.TemplateSyntaxError:
    """The error with its file and line in its message (Jinja2 leaves them to the traceback
    once it has rewritten it, so a log line or a debug 500 would not say where)."""
    located = jinja2.TemplateSyntaxError(exc.message or "syntax error", exc.lineno, exc.name, exc.filename)
    located.source = exc.source
    return located


def _takes_request(fn: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)
