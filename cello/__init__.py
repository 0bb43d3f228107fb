"""Cello: a fast Python web framework whose routes are compiled ahead of time."""

from cello import _native

# Before anything imports the server: it decides between the compiled and the source modules.
_native.install()

from cello.app import App, __version__
from cello.binding import Body, Cookie, Header, Query
from cello.blueprint import Blueprint
from cello.channels import BrokerUnavailable, ChannelError, ChannelMessage
from cello.errors import HTTPException, RouteError
from cello.forms import FormData, UploadedFile
from cello.request import Request
from cello.response import Response
from cello.sse import SseEvent, SseStream
from cello.websocket import WebSocket, WebSocketDisconnect, WebSocketMessage

__all__ = [
    "App",
    "Blueprint",
    "Body",
    "BrokerUnavailable",
    "ChannelError",
    "ChannelMessage",
    "Cookie",
    "FormData",
    "HTTPException",
    "Header",
    "Query",
    "Request",
    "Response",
    "RouteError",
    "SseEvent",
    "SseStream",
    "UploadedFile",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketMessage",
    "__version__",
]
