"""Everything of cello.templating that needs Jinja2, imported on an app's first render: an
app that renders no template never loads Jinja2 (and the route runtime never imports it).

Escaping: a compiled template writes each ``{{ value }}`` through ``escape(value)``; Cello's
templates get an ``escape`` that gives the same text as markupsafe's without wrapping every
value in a ``Markup`` first (a Python-level ``__new__`` per value): that wrapper is thrown
away at once, since the output is joined into one string. Measured on TechEmpower's fortunes
page it halves the render time. Values with ``__html__`` (Markup) are still taken as safe.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import Template
from jinja2 import TemplateSyntaxError as TemplateSyntaxError
from jinja2.runtime import new_context

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


def create_environment(
    directory: Path, debug: bool, enable_async: bool, url_for: Callable[..., str]
) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=jinja2.select_autoescape(AUTOESCAPE_EXTENSIONS),
        # Debug: every render checks the file's mtime and recompiles a changed template.
        # Otherwise a template is compiled once and kept (Jinja2's cache, 400 templates).
        auto_reload=debug,
        enable_async=enable_async,
    )
    env.template_class = _Template
    # For templates rendered outside a request, and macros imported without context.
    env.globals["url_for"] = url_for
    return env


def render(template: Template, values: dict[str, Any]) -> str:
    """``template.render(values)``, with the context built from plain dicts.

    Jinja2 merges the environment's globals into every render by iterating a ``ChainMap`` in
    Python: on TechEmpower's fortunes page that is a third of the render. The same merge by
    ``dict.update`` of each layer gives the same context (later layers win, as in the
    ChainMap's lookup order reversed) for a fraction of the cost."""
    layers = template.globals
    if not isinstance(layers, ChainMap):  # pragma: no cover - not how Jinja2 3.1 makes them
        return template.render(values)
    parent: dict[str, Any] = {}
    for layer in reversed(layers.maps):
        parent.update(layer)
    parent.update(values)
    env = template.environment
    context = new_context(env, template.name, template.blocks, parent, True, layers)
    try:
        return env.concat(template.root_render_func(context))
    except Exception:
        return env.handle_exception()


def get_template(env: jinja2.Environment, name: str, directory: Path) -> Template:
    """``env.get_template(name)``, with errors that say where: a missing template names the
    directory looked in, a syntax error its file and line."""
    try:
        return env.get_template(name)
    except TemplateSyntaxError as exc:
        raise located(exc) from None
    except jinja2.TemplateNotFound as exc:
        if exc.name != name:
            raise  # an {% include %} or {% extends %} of the template is missing
        missing = ""
        if not directory.is_dir():
            missing = " (no such directory: App(templates=...) names it, relative to the app's module)"
        raise TemplateNotFound(name, f"template {name!r} not found in {directory}{missing}") from None


def located(exc: jinja2.TemplateSyntaxError) -> jinja2.TemplateSyntaxError:
    """The error with its file and line in its message (Jinja2 leaves them to the traceback
    once it has rewritten it, so a log line or a debug 500 would not say where)."""
    located = jinja2.TemplateSyntaxError(exc.message or "syntax error", exc.lineno, exc.name, exc.filename)
    located.source = exc.source
    return located
