"""Settings: the PAYLIMIT_ prefix, client options with SASL/SSL passed through, secrets kept out of repr."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from paylimit.settings import KAFKA_CLIENT_LOG, Settings, get_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev infra exports PAYLIMIT_*; these tests set exactly what they read."""
    import os

    for name in list(os.environ):
        if name.startswith("PAYLIMIT_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    s = get_settings()
    assert s.home == Path(".paylimit")
    assert s.app_id == "paylimit" and s.daily_limit == 10 and s.partitions == 6
    assert s.default_timezone == "Asia/Kolkata"
    assert s.max_record_bytes == 16 * 1024
    assert s.retention == timedelta(days=2) and s.max_clock_skew == timedelta(hours=1)
    assert s.kafka_bootstrap_servers is None and s.redis_url is None
    assert s.notifier_group_id == "paylimit-notifier"


def test_env_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("PAYLIMIT_REDIS_URL", "redis://r:6379/0")
    monkeypatch.setenv("PAYLIMIT_DAILY_LIMIT", "3")
    monkeypatch.setenv("PAYLIMIT_HOME", str(tmp_path))
    monkeypatch.setenv("DAILY_LIMIT", "99")  # no prefix: ignored
    s = get_settings()
    assert s.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert s.redis_url is not None and s.redis_url.get_secret_value() == "redis://r:6379/0"
    assert s.daily_limit == 3 and s.home == tmp_path
    assert s.notifications_log == tmp_path / "notifications.jsonl"


def test_overrides_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYLIMIT_APP_ID", "from-env")
    assert get_settings(app_id="given").app_id == "given"


def test_invalid_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYLIMIT_PARTITIONS", "0")
    with pytest.raises(ValidationError):
        get_settings()


def test_frozen() -> None:
    s = get_settings()
    with pytest.raises(ValidationError):
        s.app_id = "other"  # type: ignore[misc]


def test_plain_client_config() -> None:
    conf = get_settings(kafka_bootstrap_servers="b:9092").kafka_client_config(**{"group.id": "g"})
    assert conf == {"bootstrap.servers": "b:9092", "security.protocol": "PLAINTEXT", "log_level": 4,
                    "logger": KAFKA_CLIENT_LOG, "group.id": "g"}


def test_client_config_needs_bootstrap() -> None:
    with pytest.raises(RuntimeError, match="PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS"):
        get_settings().kafka_client_config()


def sasl_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS", "pkc.example.cloud:9092")
    monkeypatch.setenv("PAYLIMIT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PAYLIMIT_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("PAYLIMIT_KAFKA_SASL_USERNAME", "api-key")
    monkeypatch.setenv("PAYLIMIT_KAFKA_SASL_PASSWORD", "s3cr3t-value")
    monkeypatch.setenv("PAYLIMIT_KAFKA_SSL_CA_LOCATION", "/etc/ssl/ca.pem")
    return get_settings()


def test_sasl_ssl_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = sasl_settings(monkeypatch).kafka_client_config()
    assert conf == {
        "bootstrap.servers": "pkc.example.cloud:9092",
        "security.protocol": "SASL_SSL",
        "log_level": 4,
        "logger": KAFKA_CLIENT_LOG,
        "sasl.mechanism": "PLAIN",
        "sasl.username": "api-key",
        "sasl.password": "s3cr3t-value",
        "ssl.ca.location": "/etc/ssl/ca.pem",
    }


def test_secret_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    s = sasl_settings(monkeypatch)
    assert "s3cr3t-value" not in repr(s)
    assert "s3cr3t-value" not in str(s)
    assert "s3cr3t-value" not in s.model_dump_json()


def test_as_env_round_trips_with_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    s = sasl_settings(monkeypatch)
    env = s.as_env()
    assert env["PAYLIMIT_KAFKA_SASL_PASSWORD"] == "s3cr3t-value"  # children need the real value
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert get_settings() == s


def test_unknown_security_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYLIMIT_KAFKA_SECURITY_PROTOCOL", "KERBEROS")
    with pytest.raises(ValidationError):
        get_settings()


@pytest.mark.parametrize(("name", "value", "message"), [
    ("DEFAULT_TIMEZONE", "Mars/Base", "unknown time zone 'Mars/Base'"),
    ("DEFAULT_TIMEZONE", "", "unknown time zone ''"),
    ("DEFAULT_TIMEZONE", "../etc/passwd", "unknown time zone"),
    ("WEB_PORT", "65536", "less than or equal to 65535"),
    ("DASHBOARD_PORT", "-1", "greater than or equal to 0"),
    ("KAFKA_BOOTSTRAP_SERVERS", "host:abc", "bad port in 'host:abc'"),
    ("KAFKA_BOOTSTRAP_SERVERS", "a:9092,,b:9092", "is not host:port"),
    ("KAFKA_BOOTSTRAP_SERVERS", "a:0", "is not host:port"),
    ("WORKER_URLS", "localhost:6066", "is not an http:// URL"),
    ("WORKER_URLS", "http://127.0.0.1:6066,ftp://x", "is not an http:// URL"),
    ("APP_ID", "my app", "is not a Kafka topic name"),
    ("TOPIC_ALERTS", "", "is not a Kafka topic name"),
    ("RETENTION", "-1", "must not be negative"),
    ("MAX_CLOCK_SKEW", "-PT1H", "must not be negative"),
    ("CHANGELOG_SEGMENT", "0", "must be more than 0"),
    ("NOTIFIER_LEASE", "PT0S", "must be more than 0"),
    ("KAFKA_SASL_MECHANISM", "FOO", "Input should be"),
    ("KAFKA_HEAP", "lots", "should match pattern"),
    ("KAFKA_VERSION", "latest", "should match pattern"),
    ("NOTIFIER_GROUP", "", "at least 1 character"),
    ("WORKER_INSTANCE", "", "at least 1 character"),
    ("WEB_HOST", "", "at least 1 character"),
])
def test_bad_setting_is_refused_when_read(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                          message: str) -> None:
    """Read at start, so a bad value never reaches the first record that needs it."""
    monkeypatch.setenv(f"PAYLIMIT_{name}", value)
    with pytest.raises(ValidationError) as raised:
        get_settings()
    (error,) = raised.value.errors()
    assert error["loc"] == (name.lower(),) and message in error["msg"]


@pytest.mark.parametrize(("name", "value", "read"), [
    ("DEFAULT_TIMEZONE", "America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ("KAFKA_BOOTSTRAP_SERVERS", "k1:9092, [::1]:9093,SASL_SSL://k3:9094,k4", "k1:9092, [::1]:9093,SASL_SSL://k3:9094,k4"),
    ("WORKER_URLS", "http://a:1,https://b", "http://a:1,https://b"),
    ("RETENTION", "0", timedelta(0)),
    ("RETENTION", "90", timedelta(seconds=90)),
    ("NOTIFIER_LEASE", "1.5", timedelta(seconds=1.5)),
    ("CHANGELOG_SEGMENT", "PT10M", timedelta(minutes=10)),
    ("WEB_PORT", "0", 0),
])
def test_good_setting_is_read(monkeypatch: pytest.MonkeyPatch, name: str, value: str, read: object) -> None:
    monkeypatch.setenv(f"PAYLIMIT_{name}", value)
    assert getattr(get_settings(), name.lower()) == read


@pytest.mark.parametrize(("brokers", "given", "expected"), [
    (1, {}, (1, 1)), (2, {}, (2, 1)), (3, {}, (3, 2)), (5, {}, (3, 2)),
    (3, {"replication_factor": 2}, (2, 1)), (3, {"min_insync_replicas": 1}, (3, 1)),
    (1, {"replication_factor": 3, "min_insync_replicas": 3}, (3, 3)),
])
def test_replication_follows_the_cluster_unless_given(brokers: int, given: dict, expected: tuple[int, int]) -> None:
    from paylimit.kafka import with_replication

    s = with_replication(get_settings(**given), brokers)
    assert (s.replication_factor, s.min_insync_replicas) == expected


def test_more_replicas_in_sync_than_replicas_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYLIMIT_REPLICATION_FACTOR", "2")
    monkeypatch.setenv("PAYLIMIT_MIN_INSYNC_REPLICAS", "3")
    with pytest.raises(ValidationError, match="more than PAYLIMIT_REPLICATION_FACTOR"):
        get_settings()


def test_one_sasl_mechanism_default_for_both_client_families() -> None:
    from stream_app.faust_credentials import broker_credentials

    s = get_settings(kafka_bootstrap_servers="b:9092", kafka_security_protocol="SASL_SSL",
                     kafka_sasl_username="u", kafka_sasl_password="p")
    assert s.kafka_client_config()["sasl.mechanism"] == "SCRAM-SHA-512"  # librdkafka alone: GSSAPI
    assert broker_credentials(s).mechanism.value == "SCRAM-SHA-512"  # faust alone: PLAIN


def test_client_certificate_settings_reach_librdkafka() -> None:
    conf = get_settings(kafka_bootstrap_servers="b:9092", kafka_security_protocol="SSL",
                        kafka_ssl_certificate_location="/c.pem", kafka_ssl_key_location="/k.pem",
                        kafka_ssl_key_password="kp").kafka_client_config()
    assert (conf["ssl.certificate.location"], conf["ssl.key.location"], conf["ssl.key.password"]) == \
        ("/c.pem", "/k.pem", "kp")
    assert "sasl.mechanism" not in conf


@pytest.mark.parametrize(("values", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u"}, "needs PAYLIMIT_KAFKA_SASL_USERNAME and"),
    ({"KAFKA_SSL_CERTIFICATE_LOCATION": "/c.pem"}, "go together"),
    ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
])
def test_incomplete_security_settings_are_one_line(monkeypatch: pytest.MonkeyPatch, values: dict[str, str],
                                                   message: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"PAYLIMIT_{name}", value)
    proc = subprocess.run([sys.executable, "-m", "paylimit", "limits", "show"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr


def test_an_isolated_run_has_topics_groups_and_home_of_its_own(tmp_path: Path) -> None:
    base = get_settings(kafka_bootstrap_servers="localhost:1", notifier_group="shared", daily_limit=7)
    run = base.isolated("demo-1", tmp_path / "run", partitions="3")
    assert (run.app_id, run.topic_transactions, run.topic_alerts, run.topic_dlq, run.topic_notifications_dlq) == (
        "paylimit-demo-1", "demo-1.payments.transactions", "demo-1.payments.alerts",
        "demo-1.payments.transactions.dlq", "demo-1.payments.notifications.dlq")
    assert (run.notifier_group_id, run.home, run.web_port) == ("paylimit-demo-1-notifier", tmp_path / "run", 0)
    assert (run.daily_limit, run.kafka_bootstrap_servers, run.partitions) == (7, "localhost:1", 3)  # the rest kept; overrides validated
    with pytest.raises(ValidationError):
        base.isolated("bad", tmp_path, partitions=0)
