"""Local stand-ins for the registry images docker-compose.yml names, for a Docker engine that
cannot pull (no registry reachable): built from Debian's packages and Maven Central's jars.

- `paylimit-local/python:3.11` for `python:3.11-slim`: Debian's Python 3.11 in a venv on PATH,
  trusting the CA bundle pip on this host is configured with (`pip config`), so the Dockerfile's
  `pip install` reaches PyPI the way pip here does.
- `paylimit-local/redis:7` for `redis:7`: Debian's redis-server, run as `redis` in `/data`, with
  protected mode off as in the official image.
- `paylimit-local/kafka:<version>` for `apache/kafka:<version>`: Debian's JRE, the Kafka jars and
  `docker/standins/kafka/` (the image's environment contract, as far as the compose file uses it).

Each is a Debian root filesystem made by `mmdebstrap` and loaded with `docker import`. An image is
rebuilt only when the hash of its inputs (packages, hooks, stand-in scripts, jars, CA bundle)
differs from its label, so a second run reuses them. `docker/compose.local.yml` points
the compose file at these tags. Run: `python -m paylimit.runtime.images`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from paylimit.errors import InfraError
from paylimit.runtime import kafka_broker
from paylimit.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
STANDINS = ROOT / "docker" / "standins"
OVERRIDE = ROOT / "docker" / "compose.local.yml"
HASH_LABEL = "org.paylimit.standin-hash"
SUITE = "bookworm"
MIRRORS = [f"deb http://deb.debian.org/debian {SUITE} main", f"deb http://deb.debian.org/debian {SUITE}-updates main",
           f"deb http://deb.debian.org/debian-security {SUITE}-security main"]
# no docs in the images (man pages stay: the JRE's postinst links its own)
MMDEBSTRAP = ["mmdebstrap", "--variant=minbase", "--dpkgopt=path-exclude=/usr/share/doc/*"]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Standin:
    tag: str
    packages: list[str]
    hook: str  # shell run on the host once the packages are in: "$1" is the root filesystem, {stage} `files`
    changes: list[str]  # Dockerfile instructions for `docker import --change`
    files: dict[str, Path] = field(default_factory=dict)  # name under {stage} -> a file or folder on the host


def pip_cert() -> Path | None:
    """The CA bundle pip on this host uses (`pip config`: global.cert or PIP_CERT), if any."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(".cert") and value.strip("'\""):
            return Path(value.strip("'\""))
    return None


def python_standin(cert: Path | None) -> Standin:
    hook = 'chroot "$1" python3 -m venv /opt/python'
    files = {}
    if cert is not None:
        # trust what this host's pip trusts (a TLS-inspecting proxy's CA, say), as pip here does
        hook += (' && cp {stage}/ca.crt "$1/etc/ssl/certs/ca-certificates.crt"'
                 ' && printf "[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n" > "$1/etc/pip.conf"')
        files["ca.crt"] = cert
    return Standin("paylimit-local/python:3.11", ["python3", "python3-venv", "ca-certificates", "passwd"], hook,
                   [f"ENV PATH=/opt/python/bin:{PATH}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'], files)


def redis_standin() -> Standin:
    hook = ('mkdir -p "$1/data" && chroot "$1" chown redis:redis /data'
            ' && cp {stage}/redis-server "$1/usr/local/bin/redis-server"')
    return Standin("paylimit-local/redis:7", ["redis-server"], hook,
                   ["USER redis", "WORKDIR /data", "EXPOSE 6379", 'CMD ["redis-server"]'],
                   {"redis-server": STANDINS / "redis" / "redis-server"})


def kafka_standin(settings: Settings, stage: Path, announce: Callable[[str], None]) -> Standin:
    log4j2 = stage / "log4j2.properties"  # the local broker's: warnings, and the line saying it started
    log4j2.write_text(kafka_broker.LOG4J2)
    hook = ('mkdir -p "$1/opt/kafka/config" "$1/etc/kafka/docker" "$1/var/lib/kafka/data"'
            ' && cp -rL {stage}/libs {stage}/bin "$1/opt/kafka/"'
            ' && cp {stage}/run "$1/etc/kafka/docker/run" && cp {stage}/log4j2 "$1/opt/kafka/config/log4j2.properties"'
            ' && chroot "$1" useradd --no-create-home --uid 1000 appuser'
            ' && chroot "$1" chown -R appuser /opt/kafka/config /var/lib/kafka')
    scripts = STANDINS / "kafka"
    return Standin(f"paylimit-local/kafka:{settings.kafka_version}", ["openjdk-17-jre-headless", "passwd"], hook,
                   ["USER appuser", "WORKDIR /opt/kafka", "EXPOSE 9092", 'ENTRYPOINT ["/etc/kafka/docker/run"]'],
                   {"libs": kafka_broker.ensure_jars(settings, announce), "bin": scripts / "bin",
                    "run": scripts / "run", "log4j2": log4j2})


def content_hash(standin: Standin) -> str:
    """Of everything the image is made of."""
    digest = hashlib.sha256()
    for part in [*MMDEBSTRAP, *MIRRORS, standin.tag, standin.hook, *standin.packages, *standin.changes]:
        digest.update(part.encode() + b"\0")
    for name, path in sorted(standin.files.items()):
        for f in sorted(path.iterdir()) if path.is_dir() else [path]:
            data = b"" if f.suffix == ".jar" else f.read_bytes()  # a jar by its name: it carries its version
            digest.update(f"{name}/{f.name}\0".encode() + data)
    return digest.hexdigest()[:20]


def built_hash(tag: str) -> str | None:
    proc = subprocess.run(["docker", "image", "inspect", "-f", f'{{{{index .Config.Labels "{HASH_LABEL}"}}}}', tag],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def build(standin: Standin, announce: Callable[[str], None]) -> None:
    """mmdebstrap the root filesystem, straight into `docker import`."""
    if not shutil.which("mmdebstrap"):
        raise InfraError("mmdebstrap is needed to build the local stand-in images: apt-get install -y mmdebstrap")
    announce(f"building {standin.tag} from Debian {SUITE} ({', '.join(standin.packages)})")
    changes = [*standin.changes, f"LABEL {HASH_LABEL}={content_hash(standin)}"]
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        for name, path in standin.files.items():
            (stage / name).symlink_to(path)
        log = Path(tmp) / "mmdebstrap.log"
        with open(log, "wb") as err:
            strap = subprocess.Popen(
                [*MMDEBSTRAP, "--include=" + ",".join(standin.packages), "--customize-hook=" + standin.hook.format(stage=stage),
                 SUITE, "-", *MIRRORS],
                stdout=subprocess.PIPE, stderr=err)
            load = subprocess.run(["docker", "import", *(a for c in changes for a in ("--change", c)), "-", standin.tag],
                                  stdin=strap.stdout, capture_output=True, text=True)
            strap.wait()
        if strap.returncode != 0 or load.returncode != 0:
            subprocess.run(["docker", "image", "rm", "-f", standin.tag], capture_output=True)  # a partial import
            errors = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("E:")]
            detail = " / ".join(errors[:3]) if strap.returncode else load.stderr.strip()
            raise InfraError(f"building {standin.tag} failed: {detail[:400]}")


def ensure_standins(settings: Settings, announce: Callable[[str], None] = print) -> list[str]:
    """Build the stand-ins that are missing or out of date; returns their tags."""
    with tempfile.TemporaryDirectory() as stage:
        standins = [python_standin(pip_cert()), redis_standin(), kafka_standin(settings, Path(stage), announce)]
        for standin in standins:
            if built_hash(standin.tag) != content_hash(standin):
                build(standin, announce)
    return [s.tag for s in standins]


def kafka_version_of(compose_file: Path) -> str:
    """The Kafka version of the compose file's `apache/kafka` image: the stand-in runs the same."""
    for line in compose_file.read_text().splitlines():
        if "image: apache/kafka:" in line:
            return line.split("apache/kafka:", 1)[1].strip()
    raise InfraError(f"{compose_file} names no apache/kafka image")


if __name__ == "__main__":
    s = get_settings()
    print("\n".join(ensure_standins(s.model_copy(update={"kafka_version": kafka_version_of(ROOT / "docker-compose.yml")}))))
