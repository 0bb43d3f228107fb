"""The app behind the proxy-header and TLS tests: it reports what a request looks like to it.

It trusts proxies at 127.0.0.1 and in two networks; the tests reach it from 127.0.0.1 (a
trusted proxy) and from 127.0.0.2 (an untrusted peer). `cello serve --forwarded-allow-ips`
overrides the list.
"""

from __future__ import annotations

from typing import Any

from cello import App, Request, WebSocket

app = App(forwarded_allow_ips=["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"])


def seen(request: Request) -> dict[str, Any]:
    return {
        "client": list(request.client) if request.client is not None else None,
        "client_ip": request.client_ip(),
        "scheme": request.scheme,
        "host": request.host,
        "url": request.url,
        "host_header": request.headers.get("host"),
    }


@app.get("/seen")
def seen_http(request: Request) -> dict[str, Any]:
    return seen(request)


@app.get("/seen/{rest:path}")
def seen_path(request: Request) -> dict[str, Any]:
    return seen(request)


@app.websocket("/ws/seen")
async def seen_ws(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_json(seen(ws.request))
    async for message in ws:
        await ws.send(f"echo: {message}")
