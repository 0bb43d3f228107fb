"""The HTTP/1.1 server: bytes in, ``Request``s to the application, ``Response``s out.

``serve(app, host, port, config)`` (supervisor.py) runs it, forking ``config.workers``
worker processes when there are more than one; ``Server`` (serve.py) is one process with a
thread-safe ``shutdown()`` (tests, embedding).

Modules: http/ (the HTTP/1.1 connection: protocol.py, one class for both parsers, acting on
state.py, its lifecycle without I/O; parsers.py, httptools and h11 adapters emitting the same
five events; head.py, request-head rules both share; wire.py, response bytes; body.py,
streamed request bodies), websocket/ (WebSocket connections after the upgrade: handshake.py,
driver.py, the frames without I/O on websockets' Protocol, connection.py, the asyncio side),
write_gate.py (writers waiting for a paused transport, shared by both), serve.py, supervisor.py.

Choices worth knowing (identical on both parsers):

* Malformed requests get 400 and the connection closes, after a "lingering" close (half-close,
  then unread input is dropped for up to 2 s) so that the client can read the refusal.
  Request line > ``max_request_line``: 414; header block or field count over the limits: 431;
  a body over the endpoint's ``max_body_size``: 413 (before reading it when Content-Length
  says so); an ``Expect`` other than 100-continue: 417; slow heads or bodies: 408.
* HTTP versions other than 1.0 and 1.1 (``HTTP/2.0`` in an HTTP/1 request line included)
  get 400, not 505: llhttp refuses some of them as malformed before the server sees the
  version, and both backends must answer alike. Unknown methods (not in llhttp's list) get 400.
* Runs of spaces between the parts of a request line are accepted (as llhttp does;
  RFC 9112 section 3 allows it). Nothing else lenient is: no obs-fold, no bare LF.
* A WebSocket handshake (GET, HTTP/1.1, ``Upgrade: websocket``, ``Connection: upgrade``) is
  marked (``request.upgrade``) and routed to the app's WebSocket routes; when the app answers
  with a WebSocketUpgrade, websocket/ takes the connection over. Other Upgrade and CONNECT requests
  are answered like any other request, then the connection closes.
* A client that closes its side while a streaming response is being sent is taken as gone
  (the stream stops, its generator is closed); otherwise a half-closed client still gets the
  responses to the requests it completed.
* A handler reading a streamed body sees ``ClientDisconnect`` (a ConnectionError) when the
  client goes away, and ``HTTPException(413/400/408)`` when the rest of the body is refused.
"""

from cello.server.config import ServerConfig
from cello.server.errors import ClientDisconnect
from cello.server.serve import BindError, Server, bind_socket
from cello.server.supervisor import serve

__all__ = ["BindError", "ClientDisconnect", "Server", "ServerConfig", "bind_socket", "serve"]
