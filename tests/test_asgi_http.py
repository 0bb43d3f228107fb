"""tests/test_http_app.py's behaviour, with tests/apps/basic.py under uvicorn and hypercorn.

Left out, because the server writes them and not the app:
- the Date and Server headers (`cello serve` writes its own; each ASGI server writes its own);
- a malformed request (two Content-Length headers): the server's HTTP parser refuses it before
  the app sees a scope, each server in its own words.
"""

from __future__ import annotations

from asgisuite import variant  # noqa: F401 - fixture: uvicorn and hypercorn
from test_http_app import (  # noqa: F401 - pytest collects these here again
    client,
    test_async_handler,
    test_automatic_options,
    test_bytes_body_round_trip,
    test_catch_all,
    test_debug_mode_names_the_exception,
    test_declared_options_wins,
    test_empty_body_has_content_length_zero,
    test_encoded_slash_stays_in_segment,
    test_error_handler_by_type,
    test_error_handlers_by_status,
    test_explicit_head_route,
    test_head_on_missing_route_has_no_body,
    test_head_uses_get_route,
    test_http_exception,
    test_invalid_json_is_400,
    test_json_body_echo,
    test_json_index,
    test_method_aware_backtracking,
    test_method_not_allowed_with_allow,
    test_multi_method_route,
    test_multipart_form,
    test_non_ascii_digits_are_not_int,
    test_none_is_204_without_length,
    test_not_found,
    test_query,
    test_redirect_and_cookie,
    test_request_info,
    test_return_kinds,
    test_static_beats_param,
    test_str_param_percent_decoded,
    test_streamed_request_body,
    test_streaming_responses,
    test_text_body,
    test_threaded_runs_off_the_loop,
    test_trailing_slash_redirects,
    test_tuple_headers,
    test_typed_param_converted,
    test_unhandled_exception_hides_detail,
    test_urlencoded_form,
    test_uuid_and_float,
)
