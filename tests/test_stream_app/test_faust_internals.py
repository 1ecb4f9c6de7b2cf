"""faust's version and the internals the worker uses (`stream_app.faust_internals`) are as read:
this fails, saying which, when an upgrade changes them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest

from paylimit.settings import get_settings
from stream_app.app import build_app
from stream_app.faust_internals import FAUST_VERSION, FaustChanged, check


def test_faust_is_the_version_and_has_the_internals_the_worker_uses(tmp_path: Path) -> None:
    app = build_app(get_settings(kafka_bootstrap_servers="localhost:1", home=tmp_path))
    assert faust.__version__ == FAUST_VERSION, (
        f"faust {faust.__version__} is not {FAUST_VERSION}: read stream_app/faust_internals.py again")
    check(app, app.tables["days"])  # FaustChanged names what is missing


def test_a_missing_internal_is_named(tmp_path: Path) -> None:
    app = build_app(get_settings(kafka_bootstrap_servers="localhost:1", home=tmp_path))
    table: Any = SimpleNamespace(data=SimpleNamespace())  # a store without its dict
    with pytest.raises(FaustChanged, match="Store.data"):
        check(app, table)
