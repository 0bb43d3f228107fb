"""tests/test_uploads.py's multipart behaviour, with tests/apps/uploads.py under uvicorn and hypercorn.

Left out: the 200 MB upload, which measures the memory of `cello serve` itself and asks for
that server by name.
"""

from __future__ import annotations

from asgisuite import variant  # noqa: F401 - fixture: uvicorn and hypercorn
from test_uploads import (  # noqa: F401 - pytest collects these here again
    client,
    server,
    test_blueprint_route,
    test_content_type_guessed_and_detected,
    test_disconnect_mid_upload_leaves_nothing,
    test_existing_cello_form_style,
    test_field_size_limit,
    test_fields_files_repeated_names,
    test_file_size_limit,
    test_hostile_and_unicode_filenames,
    test_malformed_bodies_are_400,
    test_missing_boundary_is_400,
    test_part_count_limit,
    test_part_header_size_limit,
    test_round_trip_property,
    test_seed_example,
    test_spooled_to_disk_and_cleaned,
    test_sync_threaded_handler,
    test_urlencoded_field_flood_is_refused_at_once,
)
