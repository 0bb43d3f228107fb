"""WebSocket echo on the `websockets` library's own asyncio server (on uvloop).

python ws_websockets.py PORT
"""

import asyncio
import signal
import sys

import uvloop
from websockets.asyncio.server import serve


async def echo(websocket) -> None:  # type: ignore[no-untyped-def]
    async for message in websocket:
        await websocket.send(message)


async def main(port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set_result, None)
    async with serve(echo, "127.0.0.1", port, compression=None):
        await stop


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
