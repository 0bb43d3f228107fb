"""Application settings: limits, timeouts and modes, all settable as ``App(name=value)``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

KiB = 1024
MiB = 1024 * 1024


@dataclass
class Config:
    debug: bool = False
    redirect_slashes: bool = True
    # Request limits (see docs/configuration.md for what each answers with).
    max_request_line: int = 8 * KiB
    max_header_size: int = 16 * KiB
    max_header_count: int = 100
    # A multipart upload may carry one file at max_file_size on top of this, unless its route
    # sets its own max_body_size (forms.multipart_body_limit).
    max_body_size: int = 16 * MiB
    # Form and upload limits; max_form_parts counts urlencoded fields too.
    max_file_size: int = 100 * MiB
    max_form_field_size: int = 1 * MiB
    max_form_parts: int = 1000
    max_part_header_size: int = 8 * KiB
    max_part_headers: int = 16
    # Timeouts, in seconds.
    keep_alive_timeout: float = 5.0
    request_head_timeout: float = 10.0
    body_idle_timeout: float = 30.0
    # Bytes per second a request body must average after body_idle_timeout (0: no minimum).
    min_body_rate: int = 1024
    graceful_timeout: float = 10.0
    # Seconds a worker (``--workers N``) may leave its heartbeat unanswered (its event loop
    # blocked, the process stopped) before the supervisor kills and replaces it.
    worker_timeout: float = 30.0
    # Seconds an async or threaded handler may take before the client gets 503 (None: no limit).
    # A sync handler runs inline on the event loop and cannot be interrupted.
    handler_timeout: float | None = None
    # Connections: open at once per process (more get 503), and queued by the kernel.
    max_connections: int = 1000
    backlog: int = 2048
    # Peers whose Forwarded / X-Forwarded-* headers are believed (docs/deploying.md): addresses
    # and networks ("127.0.0.1", "10.0.0.0/8"), or "*" for every peer; none by default.
    forwarded_allow_ips: Sequence[str] = ()
    # Server identity and behaviour.
    server_header: str | None = "cello"
    http: str = "httptools"
    threadpool_workers: int = 32
    # WebSocket and SSE.
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    ws_close_timeout: float = 10.0
    ws_max_message_size: int = 1 * MiB
    ws_max_fragments: int = 1024
    ws_compression: bool = False
    ws_allowed_origins: list[str] | None = None
    sse_keepalive: float = 15.0
    # Publish/subscribe (app.channels): the broker's URL, and how many messages a subscriber
    # may have waiting before the oldest are dropped.
    channels: str = "memory://"
    channel_max_queue: int = 1000
    # Where rate limits that name no store count (``$CELLO_RATE_LIMIT_STORE`` wins):
    # memory:// (this process) or redis://host:6379/0 (every worker and instance).
    rate_limit_store: str = "memory://"
    # Jinja2 templates (docs/templates.md): a directory, relative to the directory of the
    # module that creates the App (None: no templates).
    templates: str | os.PathLike[str] | None = "templates"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, values: dict[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown App option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)
