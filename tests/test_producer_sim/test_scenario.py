"""Scenario files: every shipped one parses; a broken file is one ConfigError naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from paylimit.errors import ConfigError
from producer_sim.scenario import MALFORMED_CLASSES, load_scenario, scenario_names

REQUIRED = {"default", "under_limit", "heavy_users", "midnight_burst", "duplicates", "out_of_order_late",
            "malformed", "timezones_dst", "limit_overrides"}


def test_the_required_scenarios_are_shipped_and_parse() -> None:
    assert REQUIRED <= set(scenario_names())
    for name in scenario_names():
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.start.tzinfo is not None


def test_the_malformed_scenario_asks_for_every_dead_letter_class() -> None:
    assert set(load_scenario("malformed").malformed) == set(MALFORMED_CLASSES)


def test_a_scenario_loads_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text('name: mine\nstart: "2024-01-01T00:00:00Z"\npopulations:\n'
                    '  - {name: p, users: 2, tx_per_day: [1, 2]}\n')
    assert load_scenario(str(path)).populations[0].users == 2


def test_unknown_scenario_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown scenario 'nope'"):
        load_scenario("nope")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_scenario(str(tmp_path / "absent.yaml"))


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text('name: broken\nstart: "2024-01-01T00:00:00Z"\npopulations: [\n  {name: p, users: 2\n')
    with pytest.raises(ConfigError) as info:
        load_scenario(str(path))
    message = str(info.value)
    assert str(path) in message and "line" in message and "\n" not in message


@pytest.mark.parametrize(("body", "field"), [
    ('name: x\nstart: "2024-01-01T00:00:00Z"\npopulations:\n  - {name: p, users: -1, tx_per_day: [1, 2]}\n',
     "populations.0.users"),
    ('name: x\nstart: "2024-01-01T00:00:00"\n', "start"),  # a start instant needs an offset
    ('name: x\nstart: "2024-01-01T00:00:00Z"\nwhole_days:\n'
     '  - {name: d, users: 1, timezone: Mars/Base, date: "2024-01-01", count: 3}\n', "whole_days.0.timezone"),
    ('name: x\nstart: "2024-01-01T00:00:00Z"\nmalformed: {bad_vibes: 1}\n', "bad_vibes"),
    ('name: x\nstart: "2024-01-01T00:00:00Z"\nsurprise: 1\n', "surprise"),
])
def test_invalid_fields_name_the_field(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_scenario(str(path))
    assert str(path) in str(info.value) and field in str(info.value)
    assert "\n" not in str(info.value)
