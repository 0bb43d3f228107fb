"""The server's WebSocket connections (RFC 6455), in three layers from the bytes up.

* ``handshake``: the opening handshake. Checks an upgrade request's WebSocket fields,
  negotiates permessage-deflate, and builds the 101 (or the refusal).
* ``driver``: the frames of an open connection without I/O, on the ``websockets`` library's
  sans-I/O ``Protocol``: bytes in, whole messages and close/failure events out, and messages
  to bytes. Its phase is that protocol's state; there is no second copy.
* ``connection``: the asyncio side of one upgraded connection (transport, timers, the
  handler's task, back-pressure), and the application's ``WebSocketSession``.

What happens when a handler returns, raises or closes before accepting is not decided here:
the application's runner decides it (``cello.websocket.run_handler``), for this server and
the ASGI adapter alike.
"""
