"""mypy is clean on every package (`make test` runs it): a public signature that lies fails here."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["paylimit", "stream_app", "notifier", "producer_sim", "dashboard", "bench"]


def test_mypy_is_clean_on_the_packages() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", *PACKAGES], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
