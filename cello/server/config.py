"""Server settings: parser choice, request limits, timeouts, identity.

The settings an App also has take their defaults from ``cello.config.Config``, the one place
defaults live; the others (buffering high-water marks, workers, ``announce``) are the server's own.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cello.config import Config, KiB

PARSERS = ("httptools", "h11")


@dataclass
class ServerConfig:
    # "httptools" (llhttp, the fast default) or "h11" (pure Python, the reference).
    http: str = Config.http
    # Request line (method SP target SP version, without CRLF) longer than this: 414.
    max_request_line: int = Config.max_request_line
    # Header block measured as sum(len(name) + len(value) + 4) over the fields ("Name: value\r\n",
    # whitespace around the value not counted, so both parsers measure the same): 431. Also
    # bounds the trailer section of a chunked body (its lines as sent).
    max_header_size: int = Config.max_header_size
    # More header fields than this (or trailer fields after a chunked body): 431.
    max_header_count: int = Config.max_header_count
    # Seconds an idle keep-alive connection is kept open.
    keep_alive_timeout: float = Config.keep_alive_timeout
    # Seconds from the first byte of a request head (or from accept) to its end; not reset per byte,
    # so a client trickling one byte at a time cannot hold a connection.
    request_head_timeout: float = Config.request_head_timeout
    # Seconds without any body bytes while a body is expected.
    body_idle_timeout: float = Config.body_idle_timeout
    # Bytes per second a request body must average once body_idle_timeout has passed (0: no
    # minimum); see HttpProtocol._start_body_clock.
    min_body_rate: int = Config.min_body_rate
    # Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    graceful_timeout: float = Config.graceful_timeout
    # Peers whose proxy headers are believed (cello/server/http/forwarded.py).
    forwarded_allow_ips: Sequence[str] = Config.forwarded_allow_ips
    # Serve HTTPS with this context (cello/server/tls.py builds it, once, before any fork).
    ssl_context: ssl.SSLContext | None = None
    # Value of the Server header; None leaves it out.
    server_header: str | None = Config.server_header
    # Bytes of a streamed request body queued for the handler before reading pauses.
    stream_high_water: int = 64 * KiB
    # Bytes read but not yet parsed (pipelined requests waiting for the responses before them)
    # before reading pauses.
    input_high_water: int = 64 * KiB
    # Open connections per process (HTTP and WebSocket); one more is answered 503 and closed.
    max_connections: int = Config.max_connections
    # Connections the kernel queues before this process accepts them.
    backlog: int = Config.backlog
    # Worker processes (see supervisor.py); 1 serves in the calling process.
    workers: int = 1
    # Seconds without a heartbeat from a worker's event loop before the supervisor kills and
    # replaces that worker (a handler that never returns, a stopped process).
    worker_timeout: float = Config.worker_timeout
    # Set by the supervisor so that several processes can bind the same port.
    reuse_port: bool = False
    # Print the start-up line on stdout (the logger gets it in any case).
    announce: bool = True
    # Called by the supervisor with each worker it reaps: (pid, replaced), where replaced says
    # that another worker takes its place (the app's metrics count restarts with it).
    on_worker_exit: Callable[[int, bool], None] | None = None
    # WebSocket: seconds between server pings (0: none), seconds to wait for the pong before
    # closing with 1011, seconds to wait for the peer's close frame after sending ours.
    ws_ping_interval: float = Config.ws_ping_interval
    ws_ping_timeout: float = Config.ws_ping_timeout
    ws_close_timeout: float = Config.ws_close_timeout
    # Largest message (after reassembly and decompression); a larger one is closed with 1009.
    ws_max_message_size: int = Config.ws_max_message_size
    # Most frames one message may come in; one more is closed with 1009.
    ws_max_fragments: int = Config.ws_max_fragments
    # Offer permessage-deflate to clients that ask for it.
    ws_compression: bool = Config.ws_compression
    # Received messages queued for a handler that does not read before reading pauses.
    ws_max_queue: int = 32

    def __post_init__(self) -> None:
        if self.http not in PARSERS:
            raise ValueError(f"unknown http parser {self.http!r}; choose one of {', '.join(PARSERS)}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if not self.worker_timeout > 0:
            raise ValueError("worker_timeout must be positive")
        if self.max_connections < 1 or self.input_high_water < 1:
            raise ValueError("max_connections and input_high_water must be positive")
        if self.min_body_rate < 0:
            raise ValueError("min_body_rate must be 0 (no minimum) or more")
        if self.ws_max_message_size < 1 or self.ws_max_fragments < 1 or self.ws_max_queue < 1:
            raise ValueError("ws_max_message_size, ws_max_fragments and ws_max_queue must be positive")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> ServerConfig:
        """Take every field this class shares by name with ``settings`` (e.g. the App's Config),
        then ``overrides``; an override of None (an option not given) keeps the value, except
        for ``server_header``, where None means "no Server header"."""
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if hasattr(settings, item.name):
                values[item.name] = getattr(settings, item.name)
        for name, value in overrides.items():
            if value is not None or name == "server_header":
                values[name] = value
        return cls(**values)
