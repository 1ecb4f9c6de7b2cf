"""Per-user limit overrides, as the worker reads them: the values of the `limits` GlobalTable (built
by `stream_app.app`), whose changelog is `settings.topic_limits`.

Every worker holds the whole table and follows the topic live, so `paylimit limits set` takes
effect without a restart. Values are LimitOverride JSON; a tombstone removes the override.
"""

from __future__ import annotations

from typing import Mapping

from pydantic import ValidationError

from paylimit.contracts import LimitOverride


def limit_for(overrides: Mapping[bytes, bytes], user_id: str, default: int) -> int:
    """The user's limit: their override among the table's values (the memory store's own dict,
    read once per record), else `default`; an override that does not parse is no override."""
    raw = overrides.get(user_id.encode())
    if not raw:
        return default
    try:
        return LimitOverride.model_validate_json(raw).limit
    except ValidationError:
        return default
