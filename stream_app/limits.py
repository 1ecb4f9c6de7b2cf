"""Per-user limit overrides: a faust GlobalTable whose changelog is `settings.topic_limits`.

Every worker holds the whole table and follows the topic live, so `paylimit limits set` takes
effect without a restart. Values are LimitOverride JSON; a tombstone removes the override.
"""

from __future__ import annotations

from typing import Any, cast

import faust
from faust.types.tables import GlobalTableT
from pydantic import ValidationError

from paylimit.contracts import LimitOverride


def limits_table(app: faust.App) -> GlobalTableT:
    # partitions=1 and recovery_buffer_size=1: faust's documented settings for a GlobalTable
    # shared by several workers (otherwise recovery can loop).
    return app.GlobalTable("limits", default=None, partitions=1,
                           recovery_buffer_size=1, key_type=bytes, value_type=bytes)


def limit_for(table: GlobalTableT, user_id: str, default: int) -> int:
    overrides = cast(Any, table.data).data  # the memory store's own dict: read once per record
    raw = overrides.get(user_id.encode()) if overrides else None
    if not raw:
        return default
    try:
        return LimitOverride.model_validate_json(raw).limit
    except ValidationError:
        return default
