"""ASGI ``lifespan`` scopes: the app's on_startup and on_shutdown hooks."""

from __future__ import annotations

from cello.asgi.types import Application, Receive, Send


async def lifespan(app: Application, receive: Receive, send: Send) -> None:
    """Run the app's startup and shutdown hooks when the ASGI server says so."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await app.startup()
            except Exception as exc:  # noqa: BLE001 - reported to the server, which stops
                await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await app.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
