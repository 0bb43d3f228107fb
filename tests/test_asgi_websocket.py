"""tests/test_websocket.py's app-owned behaviour, with tests/apps/ws.py under uvicorn and hypercorn.

Left out, because the ASGI server and not Cello owns the behaviour there:
- raw framing and protocol errors (fragments with pings between, frames sent with the
  handshake, many frames in one write, unmasked frames, reserved opcodes, invalid UTF-8,
  1009 for oversized messages or too many fragments, a close between fragments): the
  server's WebSocket parser and its limits answer those;
- the closing handshake's timing (the server waits for our close answer, sends nothing after
  close, survives a client's RST) and ping/pong: the server's protocol machinery;
- handshake validation (bad version or key, the accept token): the server's, before the app
  sees a scope;
- flow control towards a slow reader and the 500-connection load test: the server's buffers
  and capacity, not the app's.
"""

from __future__ import annotations

from asgisuite import variant  # noqa: F401 - fixture: uvicorn and hypercorn
from test_websocket import (  # noqa: F401 - pytest collects these here again
    raw,
    server,
    test_api_async_iteration_example,
    test_blueprint_before_hook_denies,
    test_broadcast_between_clients,
    test_client_close_code_reaches_the_handler,
    test_client_close_without_code,
    test_echo_text_and_binary,
    test_fragmented_messages_are_reassembled,
    test_guard_allows_and_sets_state,
    test_guard_denies_with_403,
    test_handler_end_after_accept_closes_with,
    test_handler_error_after_accept_is_1011,
    test_handler_refusals_are_http_responses,
    test_handler_returning_without_accepting_is_refused_with_403,
    test_http_route_still_works,
    test_json,
    test_nested_blueprint_with_path_param,
    test_one_path_with_http_and_websocket_routes,
    test_origin_allowed_or_refused,
    test_params_query_headers,
    test_plain_get_on_a_websocket_route_is_426,
    test_seed_chat_example,
    test_server_close_code_reaches_the_client,
    test_subprotocol_chosen_by_the_handler,
    test_subprotocol_negotiated_from_the_route,
    test_sync_handler_echo,
    test_websocket_request_to_http_routes,
)
