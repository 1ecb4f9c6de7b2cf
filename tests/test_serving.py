"""The Host check's names (`paylimit.serving`), pure."""

from __future__ import annotations

import pytest

from paylimit.serving import allowed_hosts, host_allowed
from paylimit.settings import get_settings


@pytest.mark.parametrize("header, ok", [
    ("localhost:6066", True), ("127.0.0.1", True), ("[::1]:6066", True), ("LOCALHOST", True),
    ("worker:6066", True),  # PAYLIMIT_ALLOWED_HOSTS
    ("evil.example", False), ("127.0.0.1.evil.example:6066", False), ("localhost:notaport", False),
    ("", False), (None, False),
])
def test_host_header_against_the_names(header: str | None, ok: bool) -> None:
    allowed = allowed_hosts(get_settings(allowed_hosts="worker, Dashboard"))
    assert host_allowed(header, allowed) is ok
    assert "dashboard" in allowed


def test_bind_address_and_advertised_host_are_names_wildcard_is_any() -> None:
    s = get_settings(web_host="10.1.2.3")
    assert {"10.1.2.3", "node-2"} <= allowed_hosts(s, "http://node-2:6066")
    assert "0.0.0.0" not in allowed_hosts(get_settings(web_host="0.0.0.0"))
    assert host_allowed("anything.example", allowed_hosts(get_settings(allowed_hosts="*")))
