"""The one settings object: every `PAYLIMIT_*` environment variable, read once and passed down.

`get_settings()` reads the environment; commands call it once and hand the frozen result to the
services. `kafka_client_config()` and `redis_client()` are the only places client options are
assembled, so SASL/SSL and the like pass through to every Kafka client the same way.
"""

from __future__ import annotations

import logging
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


# Every setting is checked when it is read, so a bad one is a one-line error at start (naming
# the variable), never a crash at the first record that needs it.

def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError; a path-like key a ValueError
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _host_port(item: str) -> tuple[str | None, int | None]:
    """(host, port) of `host[:port]`, `[v6]:port` or a URL's network location; ValueError if the port is bad."""
    try:
        parts = urlsplit("//" + item)
        return parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"bad port in {item!r}") from None


def _bootstrap(value: str | None) -> str | None:
    for item in value.split(",") if value is not None else []:
        host, port = _host_port(item.strip().split("://", 1)[-1])  # librdkafka takes a protocol:// prefix
        if not host or port == 0:
            raise ValueError(f"{item.strip()!r} is not host:port (a comma-separated list of them)")
    return value


def _http_urls(value: str) -> str:
    for url in value.split(","):
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not _host_port(parts.netloc)[0]:
            raise ValueError(f"{url.strip()!r} is not an http:// URL (a comma-separated list of them)")
    return value


def _kafka_name(value: str) -> str:
    # topic names (and the app id, which prefixes the limits topic): Kafka's legal characters
    if not re.fullmatch(r"[a-zA-Z0-9._-]{1,200}", value):
        raise ValueError(f"{value!r} is not a Kafka topic name (letters, digits, '.', '_', '-')")
    return value


def _seconds(value: Any) -> Any:
    """A duration given as a number of seconds ("30", "1.5") as well as ISO 8601 ("PT30S")."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d*)?\s*", value):
        return float(value)
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be more than 0")
    return value


Zone = Annotated[str, AfterValidator(_zone)]
KafkaName = Annotated[str, AfterValidator(_kafka_name)]
Port = Annotated[int, Field(ge=0, le=65535)]
NonNegativeDuration = Annotated[timedelta, BeforeValidator(_seconds), AfterValidator(_not_negative)]
PositiveDuration = Annotated[timedelta, BeforeValidator(_seconds), AfterValidator(_positive)]


#: where every Kafka client's own log lines go (the `logger` option of confluent-kafka)
KAFKA_CLIENT_LOG = logging.getLogger("paylimit.librdkafka")
# a process that configured no logging (a command in a terminal) drops them instead of Python's
# last-resort handler printing them to stderr; one that did (a service) logs them
KAFKA_CLIENT_LOG.addHandler(logging.NullHandler())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYLIMIT_", frozen=True, extra="ignore")

    # where a run's state lives (infra data, logs, notifications log)
    home: Path = Field(Path(".paylimit"), description="Directory for infra data, logs and the notifications log")
    cache_dir: Path = Field(Path.home() / ".cache" / "paylimit", description="Cache for downloaded Kafka jars (shared by clones)")

    # Kafka connection; None means "find the local infra" (see paylimit.runtime)
    kafka_bootstrap_servers: Annotated[str | None, AfterValidator(_bootstrap)] = Field(None, description="Kafka bootstrap servers, e.g. host:9092")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # one default for every client: librdkafka alone would take GSSAPI, faust's aiokafka PLAIN
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism of every Kafka client (SASL_* protocols)")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = Field(None, description="CA certificate(s) (PEM file) the broker's "
                                              "certificate is checked against; None: the system's")
    kafka_ssl_certificate_location: str | None = Field(None, description="Client certificate (PEM file) for "
                                                       "brokers that require one (mutual TLS)")
    kafka_ssl_key_location: str | None = Field(None, description="The client certificate's private key (PEM file)")
    kafka_ssl_key_password: SecretStr | None = Field(None, description="Password of an encrypted private key")
    kafka_version: str = Field("4.3.1", pattern=r"^\d+\.\d+\.\d+$", description="Apache Kafka version the local runtime runs")
    kafka_heap: str = Field("768m", pattern=r"^\d+[kKmMgG]?$", description="Max heap of the local Kafka broker")

    redis_url: SecretStr | None = Field(None, description="Redis URL (a secret: it may hold a password); "
                                        "None means the local infra's")

    # topics and consumer groups
    app_id: KafkaName = Field("paylimit", description="faust app id = the stream workers' consumer group")
    topic_transactions: KafkaName = "payments.transactions"
    topic_alerts: KafkaName = "payments.alerts"
    topic_alerts_shadow: KafkaName = Field("payments.alerts.shadow", description="Shadow rules' alerts "
                                           "(never delivered; `paylimit shadow report`)")
    topic_dlq: KafkaName = "payments.transactions.dlq"
    topic_rules: KafkaName = Field("payments.rules", description="The limit rules (compacted; `paylimit rules`)")
    topic_notifications_dlq: KafkaName = Field("payments.notifications.dlq", description="Notifications the webhook "
                                               "did not take (key = alert_id)")
    partitions: int = Field(6, ge=1, description="Partitions of the topics paylimit creates")
    replication_factor: int | None = Field(None, ge=1, description="Replicas of each partition of the topics "
                                           "paylimit and faust create. None: 3 on three brokers or more, the "
                                           "number of brokers below that")
    min_insync_replicas: int | None = Field(None, ge=1, description="Replicas that must have a write before it "
                                            "is acknowledged (producers use acks=all). None: 2 with a replication "
                                            "factor of 3 or more, else 1")
    notifier_group: str | None = Field(None, min_length=1, description="Notifier consumer group (default: APP_ID-notifier)")

    # counting semantics
    default_timezone: Zone = Field("Asia/Kolkata", description="Zone for transactions without `timezone`")
    daily_limit: int = Field(10, ge=0, le=1_000,  # paylimit.contracts.MAX_DAILY_LIMIT
                             description="Successful transactions allowed per local day (at most 1,000)")
    retention: NonNegativeDuration = Field(timedelta(days=2), description="How long after its day ends a late event still counts")
    max_clock_skew: NonNegativeDuration = Field(timedelta(hours=1), description="How far ahead of the wall clock an event may be dated")
    max_record_bytes: int = Field(16 * 1024, ge=256, description="Records larger than this are dead-lettered as too_large")

    # services
    web_host: str = Field("127.0.0.1", min_length=1)
    web_port: Port = Field(6066, description="Worker HTTP port (0 = pick a free one)")
    web_advertised_url: str | None = Field(None, description="The URL other workers reach this worker's HTTP "
                                           "server on (it forwards a usage query for a user on a partition it "
                                           "does not own to the owner's); default http://WEB_HOST:WEB_PORT, "
                                           "the machine's host name when WEB_HOST binds every interface")
    dashboard_port: Port = Field(6067, description="Dashboard HTTP port (0 = pick a free one)")
    worker_urls: Annotated[str, AfterValidator(_http_urls)] = Field("http://127.0.0.1:6066", description="Comma-separated worker base URLs the dashboard reads")
    worker_ready_timeout: float = Field(600.0, ge=0, description="Seconds a starting worker may take to become "
                                        "ready (partitions assigned, state restored) before it exits with an error "
                                        "for its supervisor to start it again; 0 = wait forever")
    batch_max: int = Field(2000, ge=1, description="Most records the worker processes as one batch")
    batch_window: float = Field(0.01, gt=0, description="Seconds the worker waits to fill a batch (bounds alert latency)")
    commit_interval: float = Field(0.5, gt=0, description="Seconds between the worker's offset commits "
                                   "and its state writes to the changelog")
    changelog_segment: PositiveDuration = Field(timedelta(minutes=10), description="How long the state's changelog "
                                         "writes one segment: the broker compacts closed segments only, so this "
                                         "bounds what a restart restores beyond the live keys; each compaction "
                                         "costs the broker a pass over the log")
    session_timeout: float = Field(6.0, gt=0, description="Seconds before a dead worker's or notifier's partitions "
                                   "go to another member (6 is the broker's minimum)")
    worker_instance: str | None = Field(None, min_length=1, description="The worker's static member id in its consumer group, "
                                        "unique per worker: restarted with the same id it takes its partitions "
                                        "back at once instead of after the session timeout (a worker stopped for "
                                        "good then holds them for the session timeout). None: a dynamic member")
    webhook_url: SecretStr | None = Field(None, description="Optional http(s) URL the notifier POSTs each alert to "
                                          "(a secret: it may hold a token)")
    notifier_lease: PositiveDuration = Field(timedelta(seconds=30), description="How long a notifier's reservation of an alert lasts")
    webhook_timeout: float = Field(5.0, gt=0, description="Seconds one webhook POST may take in all, at most half "
                                   "the notifier lease (so no other notifier takes the alert over mid-POST)")
    webhook_retry_for: NonNegativeDuration = Field(timedelta(minutes=2), description="How long the webhook "
                                         "may keep failing transiently before alerts are dead-lettered instead")
    notifier_heartbeat: Path | None = Field(None, description="A file the notifier touches every second while its "
                                            "loop runs (a health check's probe); None: no file")
    notifier_port: Port = Field(0, description="The notifier's HTTP port on WEB_HOST (/healthz, /readyz, /metrics); "
                                "0 = pick a free one (printed in its start line)")
    allowed_hosts: str = Field("", description="Comma-separated host names (the Host header, port aside) the HTTP "
                               "servers answer besides loopback, WEB_HOST and the worker's advertised host; `*` = any")
    log_format: Literal["text", "json"] = Field("text", description="Services' log lines: text, or one JSON "
                                                "object per line (secret settings redacted)")

    # bounds on what paylimit keeps (README: Operating paylimit, Bounds)
    topic_retention: PositiveDuration = Field(timedelta(days=7), description="retention.ms of the topics paylimit "
                                              "creates that delete old records (not the compacted ones)")
    topic_segment: PositiveDuration = Field(timedelta(days=1), description="segment.ms of those topics: a record "
                                            "is deleted at most TOPIC_RETENTION + TOPIC_SEGMENT after it was written")
    delivered_ttl: PositiveDuration = Field(timedelta(days=30), description="How long Redis keeps an alert's "
                                            "`delivered` mark: more than any replay can reach (see the check)")
    record_max_entries: int = Field(100_000, ge=1, description="Entries the shared record of notifications "
                                    "(Redis stream) keeps, the latest; older ones are trimmed")
    log_segment_bytes: int = Field(64 * 1024 * 1024, ge=1, description="Size at which the notifications "
                                   "log starts a new segment file")
    dashboard_users: int = Field(20_000, ge=1, description="(user, day) pairs the dashboard keeps in memory")

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook_url_is_http(cls, v: Any) -> Any:
        url = v.get_secret_value() if isinstance(v, SecretStr) else v
        if url in (None, ""):
            return None  # unset (compose passes an empty variable through)
        parts = urlsplit(str(url))
        try:
            parts.port  # noqa: B018 (raises ValueError on a port that is not a number in range)
        except ValueError:
            raise ValueError("the port is not a number from 1 to 65535") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # the message never repeats the URL: it is a secret
            raise ValueError("must be an http:// or https:// URL with a host, e.g. https://hooks.example.com/paylimit")
        return v

    @field_validator("webhook_timeout")
    @classmethod
    def _webhook_timeout_within_lease(cls, v: float, info: ValidationInfo) -> float:
        lease = info.data.get("notifier_lease")
        if info.data.get("webhook_url") and lease is not None and v > lease.total_seconds() / 2:
            raise ValueError(f"must be at most half of PAYLIMIT_NOTIFIER_LEASE ({lease.total_seconds():g} s)")
        return v

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> "Settings":
        if self.kafka_security_protocol.startswith("SASL") and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"PAYLIMIT_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                             "PAYLIMIT_KAFKA_SASL_USERNAME and PAYLIMIT_KAFKA_SASL_PASSWORD")
        if bool(self.kafka_ssl_certificate_location) != bool(self.kafka_ssl_key_location):
            raise ValueError("PAYLIMIT_KAFKA_SSL_CERTIFICATE_LOCATION and PAYLIMIT_KAFKA_SSL_KEY_LOCATION go together")
        return self

    @field_validator("delivered_ttl")
    @classmethod
    def _ttl_beyond_replay(cls, v: timedelta, info: ValidationInfo) -> timedelta:
        # an alert comes back at most one transactions record's and one alert record's lifetime after
        # its first delivery (README: Bounds); an hour more covers the broker's retention check
        retention, segment = info.data.get("topic_retention"), info.data.get("topic_segment")
        if retention is not None and segment is not None and v < 2 * (retention + segment) + timedelta(hours=1):
            raise ValueError(f"must be at least 2 x (PAYLIMIT_TOPIC_RETENTION + PAYLIMIT_TOPIC_SEGMENT) + 1 h "
                             f"({2 * (retention + segment) + timedelta(hours=1)}): a replayed alert could be "
                             "delivered again")
        return v

    @field_validator("min_insync_replicas")
    @classmethod
    def _insync_within_replicas(cls, isr: int | None, info: ValidationInfo) -> int | None:
        rf = info.data.get("replication_factor")
        if isr is not None and rf is not None and isr > rf:
            raise ValueError(f"{isr} is more than PAYLIMIT_REPLICATION_FACTOR ({rf}): no write could be acknowledged")
        return isr

    @field_validator("web_advertised_url")
    @classmethod
    def _reachable_url(cls, url: str | None) -> str | None:
        if url is not None and not (urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname):
            raise ValueError(f"must be an http:// or https:// URL with a host, not {url!r}")
        return url

    @property
    def advertised_url(self) -> str:
        """`web_advertised_url`, or derived from the bind address (see its description)."""
        if self.web_advertised_url:
            return self.web_advertised_url.rstrip("/")
        host = socket.gethostname() if self.web_host in ("0.0.0.0", "::", "") else self.web_host
        return f"http://[{host}]:{self.web_port}" if ":" in host else f"http://{host}:{self.web_port}"

    @property
    def notifications_log(self) -> Path:
        return self.home / "notifications.jsonl"

    @property
    def topic_limits(self) -> str:
        """Per-user limit overrides: compacted, read by the workers as the faust GlobalTable
        `limits`, whose changelog topic this is (faust names it; a custom name stalls faust's
        partition assignment)."""
        return f"{self.app_id}-limits-changelog"

    @property
    def notifier_group_id(self) -> str:
        return self.notifier_group or f"{self.app_id}-notifier"

    def isolated(self, run: str, home: Path, **overrides: Any) -> Settings:
        """These settings for a run of its own on the same Kafka and Redis (the demo, chaos, the
        tests): topics and consumer groups named after `run`, its own home, the worker's port
        picked free; `overrides` win. Validated like the environment's."""
        values: dict[str, Any] = dict(self)
        values.update({
            "app_id": f"{self.app_id}-{run}", "topic_transactions": f"{run}.{self.topic_transactions}",
            "topic_alerts": f"{run}.{self.topic_alerts}", "topic_dlq": f"{run}.{self.topic_dlq}",
            "topic_alerts_shadow": f"{run}.{self.topic_alerts_shadow}",
            "topic_notifications_dlq": f"{run}.{self.topic_notifications_dlq}",
            "topic_rules": f"{run}.{self.topic_rules}", "notifier_group": None,
            "home": home, "web_port": 0, **overrides})
        return type(self).model_validate(values)

    def as_env(self) -> dict[str, str]:
        """These settings as PAYLIMIT_* variables, for child processes (`paylimit worker`, …)."""
        env = {f"PAYLIMIT_{k.upper()}": str(v) for k, v in self.model_dump(mode="json", exclude_none=True).items()}
        for name, value in self:
            if isinstance(value, SecretStr):  # dumped as ********: the child needs the secret itself
                env[f"PAYLIMIT_{name.upper()}"] = value.get_secret_value()
        return env

    def kafka_client_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka options for confluent-kafka clients (producer, consumer, admin)."""
        if not self.kafka_bootstrap_servers:
            raise RuntimeError("Kafka bootstrap servers are not set (PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS)")
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
            "log_level": 4,  # warnings and errors; librdkafka's info lines are noise in a terminal
            # librdkafka's lines go to Python logging (delivered on the client's poll), never
            # straight to stderr: a service's log has them, a command's display does not
            "logger": KAFKA_CLIENT_LOG,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = self.kafka_ssl_ca_location
        if self.kafka_ssl_certificate_location:
            conf["ssl.certificate.location"] = self.kafka_ssl_certificate_location
        if self.kafka_ssl_key_location:
            conf["ssl.key.location"] = self.kafka_ssl_key_location
        if self.kafka_ssl_key_password:
            conf["ssl.key.password"] = self.kafka_ssl_key_password.get_secret_value()
        conf.update(extra)
        return conf


def get_settings(**overrides: Any) -> Settings:
    """Read the environment (PAYLIMIT_*) once; keyword overrides win."""
    return Settings(**overrides)
