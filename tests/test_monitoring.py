"""The compose stack's monitoring files (docker-compose.yml's `monitoring` profile): promtool
accepts the Prometheus scrape config and every query of the Grafana dashboard, and those queries
only name metrics the README lists (which tests/test_operations.py checks the services expose)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "docker" / "monitoring"


def test_promtool_accepts_the_scrape_config() -> None:
    done = subprocess.run(["promtool", "check", "config", str(MONITORING / "prometheus.yml")], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_queries_parse_and_name_listed_metrics(tmp_path: Path) -> None:
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "paylimit.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 12
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"paylimit:dashboard:{i}", "expr": e} for i, e in enumerate(exprs)]}]}))
    done = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    readme = (ROOT / "README.md").read_text()
    for name in {re.sub(r"_(bucket|sum|count)$", "", m) for e in exprs for m in re.findall(r"paylimit_\w+", e)}:
        assert f"`{name}`" in readme, name
