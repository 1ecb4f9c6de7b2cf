"""A user's limit: their override among the limits table's values, else the default; an override
that does not parse is no override (a bad record never stops the counting)."""

from paylimit.contracts import LimitOverride, encode
from stream_app.limits import limit_for


def test_an_override_replaces_the_default_and_a_bad_one_is_ignored() -> None:
    values = {b"u1": encode(LimitOverride(user_id="u1", limit=3)), b"u2": b"{not json", b"u3": b""}
    assert [limit_for(values, user, 10) for user in ("u1", "u2", "u3", "u4")] == [3, 10, 10, 10]
