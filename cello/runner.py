"""Turning run options (code arguments, command-line flags) into a running server."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from cello.app import App

from cello import logs as cello_logs
from cello.build_artifacts import attach_build
from cello.channels import broker_for
from cello.config import Config
from cello.middleware.debug import install as install_debug
from cello.reloader import is_reloader_child, run_with_reload, script_directory
from cello.server.http.forwarded import TrustedProxies

log = logging.getLogger("cello")


class RunError(ValueError):
    """Run options that cannot work (a bad value, a certificate that does not load): one line
    for the user; `cello serve` prints it and exits with status 2."""


@dataclass(frozen=True)
class RunOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    debug: bool | None = None
    env: str | None = None
    workers: int = 1
    reload: bool = False
    logs: bool | None = None
    http: str | None = None
    # --log-format: "text" or "json" for the framework's logs; None: the app's enable_logging(format=).
    log_format: str | None = None
    # The channels broker's URL (--channels); None: $CELLO_CHANNELS, then the App's.
    channels: str | None = None
    build_dir: str = "build"
    require_compiled: bool = False
    # None: the App's value (see cello/config.py).
    keep_alive_timeout: float | None = None
    request_head_timeout: float | None = None
    body_idle_timeout: float | None = None
    min_body_rate: int | None = None
    graceful_timeout: float | None = None
    handler_timeout: float | None = None
    worker_timeout: float | None = None
    max_connections: int | None = None
    backlog: int | None = None
    # HTTPS (cello/server/tls.py): the certificate chain, its key (None: in the certificate
    # file), the key's password, and the CAs whose client certificates are required.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None
    # Peers whose proxy headers are believed; None: the App's forwarded_allow_ips.
    forwarded_allow_ips: Sequence[str] | None = None
    # app.run() looks for a matching `cello build` in ./build; `cello serve` has done so already.
    load_build: bool = False

    def __post_init__(self) -> None:
        for name, allowed in _NUMERIC.items():
            value = getattr(self, name)
            if value is not None and not allowed.accepts(value):
                raise RunError(f"{name} must be {allowed}, got {value!r}")
        if self.ssl_certfile is None:
            for name in ("ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs"):
                if getattr(self, name) is not None:
                    raise RunError(f"{name} needs ssl_certfile (--ssl-certfile): the server's certificate")
        if self.forwarded_allow_ips is not None:
            try:
                TrustedProxies.parse(self.forwarded_allow_ips)
            except ValueError as exc:
                raise RunError(str(exc)) from None

    def with_argv(self, argv: Sequence[str]) -> RunOptions:
        """Command-line flags win over the values given in code (``app.run(port=...)``)."""
        parser = argparse.ArgumentParser(add_help=False)
        add_run_flags(parser)
        known, _ = parser.parse_known_args(list(argv))
        return self.merged(known)

    def merged(self, ns: argparse.Namespace) -> RunOptions:
        changes = {
            key: value
            for key, value in vars(ns).items()
            if value is not None and key in {f.name for f in dataclasses.fields(self)}
        }
        if getattr(ns, "no_logs", False):
            changes["logs"] = False
        return dataclasses.replace(self, **changes)

    def debug_for(self, configured: bool) -> bool:
        """``--debug`` wins, then ``--env``/``$CELLO_ENV``, then what the app was built with."""
        if self.debug is not None:
            return self.debug
        env = self.env or os.environ.get("CELLO_ENV")
        if env is not None:
            return env.lower() in ("dev", "development")
        return configured


_Number = Union[int, float]


class _Range:
    """The values a numeric option accepts: one rule for its flag and for ``app.run(...)``."""

    def __init__(
        self, kind: type[int] | type[float], low: _Number, high: _Number | None = None, above: bool = False
    ) -> None:
        self.kind = kind
        self.low = low
        self.high = high
        self.above = above  # low itself excluded

    def __str__(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        if self.high is not None:
            return f"{noun} from {self.low} to {self.high}"
        return f"{noun} greater than {self.low}" if self.above else f"{noun} of at least {self.low}"

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value) or value < self.low or (self.above and value == self.low):
            return False
        return self.high is None or value <= self.high

    def parse(self, text: str) -> _Number:
        """The flag's value (argparse turns ArgumentTypeError into a usage error, exit 2)."""
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {self}, got {text!r}") from None
        if not self.accepts(value):
            raise argparse.ArgumentTypeError(f"must be {self}, got {text!r}")
        return value


def _channels_url(text: str) -> str:
    try:
        broker_for(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _proxy_list(text: str) -> list[str]:
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    try:
        TrustedProxies.parse(entries)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("forwarded_allow_ips: ")) from None
    return entries


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_NUMERIC["port"].parse, default=None, help="port to bind, 0 for any free one (default 8000)"
    )
    parser.add_argument("--env", default=None, help="development or production (default: $CELLO_ENV or production)")
    parser.add_argument(
        "--debug", action="store_const", const=True, default=None, help="detailed errors and request logging"
    )
    parser.add_argument("--workers", type=_NUMERIC["workers"].parse, default=None, help="number of worker processes")
    parser.add_argument(
        "--reload", action="store_const", const=True, default=None, help="restart on source changes (dev)"
    )
    parser.add_argument("--no-logs", action="store_true", default=False, help="only log warnings and errors")
    parser.add_argument(
        "--log-format",
        choices=cello_logs.FORMATS,
        default=None,
        help="the framework's log lines (start-up, errors, access log): text, or one JSON object per line "
        "(default: the app's enable_logging(format=...), else text)",
    )
    parser.add_argument("--http", choices=("httptools", "h11"), default=None, help="HTTP/1.1 parser")
    parser.add_argument(
        "--channels",
        type=_channels_url,
        default=None,
        metavar="URL",
        help="app.channels broker: memory:// or redis://host:6379/0 (default: $CELLO_CHANNELS or the App's)",
    )
    tls = parser.add_argument_group("HTTPS (docs/running.md)")
    tls.add_argument("--ssl-certfile", default=None, metavar="PATH", help="serve HTTPS with this PEM certificate chain")
    tls.add_argument(
        "--ssl-keyfile", default=None, metavar="PATH", help="its PEM private key (default: in --ssl-certfile)"
    )
    tls.add_argument(
        "--ssl-keyfile-password",
        default=None,
        metavar="PASSWORD",
        help="password of an encrypted key (default: $CELLO_SSL_KEYFILE_PASSWORD)",
    )
    tls.add_argument(
        "--ssl-ca-certs",
        default=None,
        metavar="PATH",
        help="require client certificates issued by these CAs (mutual TLS)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        type=_proxy_list,
        default=None,
        metavar="IPS",
        help="proxies whose Forwarded/X-Forwarded-* headers are believed: addresses and networks, "
        "comma-separated (127.0.0.1,10.0.0.0/8), or '*' for any peer (default: none; docs/deploying.md)",
    )
    # Limits and timeouts; without a flag the App's value holds (docs/security.md lists them).
    for flag, _, text in _SERVER_FLAGS:
        allowed = _NUMERIC[flag[2:].replace("-", "_")]
        parser.add_argument(flag, type=allowed.parse, default=None, metavar="N", help=text)


# The defaults shown are Config's (cello/config.py), where they live.
_SERVER_FLAGS: tuple[tuple[str, type, str], ...] = (
    (
        "--keep-alive-timeout",
        float,
        f"seconds an idle keep-alive connection stays open ({Config.keep_alive_timeout:g})",
    ),
    ("--request-head-timeout", float, f"seconds to receive a whole request head ({Config.request_head_timeout:g})"),
    ("--body-idle-timeout", float, f"seconds without body bytes before 408 ({Config.body_idle_timeout:g})"),
    (
        "--min-body-rate",
        int,
        f"bytes/s a body must average after --body-idle-timeout; 0: none ({Config.min_body_rate})",
    ),
    (
        "--graceful-timeout",
        float,
        f"seconds in-flight requests and after_response work get at shutdown ({Config.graceful_timeout:g})",
    ),
    (
        "--handler-timeout",
        float,
        f"seconds an async/threaded handler may take before 503 ({Config.handler_timeout or 'none'})",
    ),
    (
        "--worker-timeout",
        float,
        f"seconds a worker's event loop may not answer before it is replaced ({Config.worker_timeout:g})",
    ),
    ("--max-connections", int, f"open connections per process; more get 503 ({Config.max_connections})"),
    ("--backlog", int, f"listen backlog ({Config.backlog})"),
)
# RunOptions fields that are App settings of the same name.
_APP_SETTINGS: tuple[str, ...] = tuple(flag[2:].replace("-", "_") for flag, _, _ in _SERVER_FLAGS)
# Every numeric run option: timeouts are seconds above 0, counts are at least 1.
_NUMERIC: dict[str, _Range] = {
    "port": _Range(int, 0, 65535),
    "workers": _Range(int, 1),
    **{
        name: _Range(float, 0, above=True) if kind is float else _Range(int, 1)
        for name, (_, kind, _) in zip(_APP_SETTINGS, _SERVER_FLAGS)
    },
    "min_body_rate": _Range(int, 0),  # 0: no minimum rate
}


def configure_logging(debug: bool, logs: bool | None, log_format: str | None = None) -> None:
    """The "cello" loggers' level, and their output (cello/logs.py) in ``log_format`` (None:
    the app's ``enable_logging(format=...)``, text by default)."""
    level = logging.DEBUG if debug else logging.INFO
    if logs is False:
        level = logging.WARNING
    cello_logs.configure(level, log_format)


def run_app(app: App, options: RunOptions) -> int:
    """Serve ``app`` until a signal stops it; returns the process exit code."""
    # The server (uvloop, the parsers, compiled modules) loads only when serving: an app run
    # by an ASGI server or a `cello build` never imports it.
    from cello.server.config import ServerConfig
    from cello.server.supervisor import serve
    from cello.server.tls import TLSError, server_context

    # Loaded here, once, before any reloader child or worker: a bad file stops the start.
    ssl_context = None
    if options.ssl_certfile is not None:
        try:
            ssl_context = server_context(
                options.ssl_certfile, options.ssl_keyfile, options.ssl_keyfile_password, options.ssl_ca_certs
            )
        except TLSError as exc:
            raise RunError(f"TLS: {exc}") from None
    if options.reload:
        if not is_reloader_child():
            configure_logging(False, options.logs, options.log_format)
            return run_with_reload([script_directory()], [Path(options.build_dir)])
    for name in _APP_SETTINGS:
        value = getattr(options, name)
        if value is not None:
            setattr(app.config, name, value)
    debug = options.debug_for(app.config.debug)
    if options.http:
        app.config.http = options.http
    if options.channels:
        app.channels.use(options.channels)
    if options.forwarded_allow_ips is not None:
        app.config.forwarded_allow_ips = options.forwarded_allow_ips
    # Several workers: metrics go to files that any worker's scrape reads. Decided before the
    # fork, before any request is counted.
    metrics = app.metrics if options.workers > 1 else None
    if metrics is not None:
        metrics.share_between_processes()
    if debug:
        install_debug(app.scope)
    # Setting App.debug rebuilds the endpoints, with every setting and hook changed above.
    app.debug = debug
    configure_logging(debug, options.logs, options.log_format)
    if options.load_build:
        attach_build(app, Path(options.build_dir))
    # The start-up line goes through the log; print it only when logs are silenced.
    config = ServerConfig.from_settings(
        app.config, workers=options.workers, announce=options.logs is False, ssl_context=ssl_context
    )
    log.info("router: %s (%d routes)", app.router_kind, len(app.routes()))
    if options.workers > 1 and not app.channels.shared_between_processes:
        log.warning(
            "channels: %s reaches only the process publishing; with --workers %d, app.channels "
            "messages (ws.join, SSE from_channel) reach the clients of one worker. If the app uses "
            "channels, share them: --channels redis://127.0.0.1:6379/0 (or $CELLO_CHANNELS); "
            "see docs/channels.md",
            app.channels.url,
            options.workers,
        )
    if options.workers > 1 and app.rate_limit_stores.process_local:
        log.warning(
            "rate limits: memory:// counts in each process; with --workers %d a client gets up to "
            '%d times its limit. Share the counters: App(rate_limit_store="redis://127.0.0.1:6379/0") '
            "or $CELLO_RATE_LIMIT_STORE; see the rate limits docs",
            options.workers,
            options.workers,
        )
    if metrics is None:
        return serve(app, options.host, options.port, config)
    config = dataclasses.replace(config, on_worker_exit=metrics.worker_exited)
    try:
        return serve(app, options.host, options.port, config)
    finally:
        metrics.close()
