"""The CLI's commands: each registered once (a second registration of a name shadows the first)."""

from collections import Counter

from paylimit.cli.main import app


def test_every_command_is_registered_once() -> None:
    names = Counter(command.name for command in app.registered_commands)
    names.update(group.name for group in app.registered_groups)
    assert [name for name, n in names.items() if n > 1] == []


def test_a_url_is_shown_without_its_password() -> None:
    from paylimit.cli.common import masked

    assert masked("redis://:0123abcd@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert masked("redis://user:0123abcd@127.0.0.1:6379/0") == "redis://user:***@127.0.0.1:6379/0"
    assert masked("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
