"""The import layers of pyproject.toml's [tool.importlinter] hold: `make test` fails on an import
that goes up a layer or across the services."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_layers_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    broken = done.stdout.find("Broken contracts")
    assert done.returncode == 0, done.stdout[broken:] if broken >= 0 else (done.stdout + done.stderr)[-2000:]
