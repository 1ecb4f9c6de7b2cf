"""The run's result: a rich table for the terminal and a JSON file under bench/results/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.steps import P99_MS


def write(result: dict, results_dir: Path) -> Path:
    """`results_dir/<timestamp>.json` and a copy as `latest.json`; returns the former."""
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    path = results_dir / f"{result['stamp']}.json"
    path.write_text(text)
    (results_dir / "latest.json").write_text(text)
    return path


def _n(v: Any, unit: str = "", digits: int = 0) -> str:
    if v is None:
        return "—"
    if isinstance(v, (int, float)):
        return f"{v:,.{digits}f}{unit}"
    return str(v)


def _pct(v: Any) -> str:
    return f"{v * 100:.1f} %" if isinstance(v, (int, float)) else "—"


def _catchups(t: Table, rows: list[tuple[str, str, dict]]) -> None:
    """A catch-up's rows (start -> lag 0, and steady) for each (key in source, label, source)."""
    for key, label, source in rows:
        c = source.get(key, {})
        if "error" in c:
            t.add_row(label, "failed", "", c["error"][:80])
            continue
        peer = f" · {c['vs_peer']:.2f}x the peer" if "vs_peer" in c else ""
        target = "; target >= 35 % and >= 2x the peer" if peer and key == "workers_1" else ""
        t.add_row(label, _n(c.get("events_per_s"), " ev/s"), _pct(c.get("ratio")) + peer,
                  ("start -> lag 0" if c.get("complete", True) else
                   f"timed out: rate to its last record; lag {_n(c.get('lag_at_end'))} not committed") + target)
        t.add_row("  steady (first record -> end)", _n(c.get("steady_events_per_s"), " ev/s"), _pct(c.get("steady_ratio")), "")


def _sustained(t: Table, label: str, s: dict, verdict: str) -> None:
    """One sustained rate's row (bench/sustained.py's figures)."""
    if "error" in s:
        t.add_row(label, "failed", "", s["error"][:80])
        return
    lat = s["latency_ms"]
    t.add_row(f"{label} {s['target_rate']:,} tx/s", _n(s["achieved_rate"], " tx/s"), verdict,
              f"max lag {s['max_lag']:,}; drain {_n(s['drain_s'], ' s', 1)}; {s['alerts']} alerts: "
              f"p50 {lat['p50']:.0f} / p95 {lat['p95']:.0f} / p99 {lat['p99']:.0f} ms (target < {P99_MS:.0f})")


def keeps_up_line(result: dict) -> str:
    """The figure a user asks first, printed after the table."""
    keeps_up = result.get("keeps_up", {})
    if "error" in keeps_up:
        return f"one worker's stepped rates failed: {keeps_up['error']}"
    if not keeps_up.get("steps"):
        return "one worker's stepped rates did not run"
    if keeps_up["rate"] is None:
        return (f"one worker keeps up with none of the stepped rates (not even {keeps_up['steps'][0]['target_rate']:,} "
                f"tx/s) with p99 under {P99_MS:.0f} ms on this machine")
    every = " (every step held: the highest offered)" if all(s["held"] for s in keeps_up["steps"]) else ""
    return f"one worker keeps up with {keeps_up['rate']:,} tx/s with p99 under {P99_MS:.0f} ms on this machine{every}"


def table(result: dict) -> Table:
    m = result.get("machine", {})
    t = Table(title=f"paylimit benchmark {result['stamp']}{' (quick)' if result['config']['quick'] else ''}",
              caption=f"{m.get('nproc')} cores · {m.get('cpu_model')} · {m.get('ram_gb')} GB RAM · "
                      f"Python {m.get('python')} · librdkafka {m.get('librdkafka')}")
    for col in ("figure", "value", "vs ceiling", "notes"):
        t.add_column(col, justify="right" if col in ("value", "vs ceiling") else "left")
    load = result.get("load", {})
    t.add_row("pre-load", _n(load.get("events_per_s"), " ev/s"), "",
              f"{_n(load.get('records'))} tx, {_n(load.get('users'))} users, {load.get('partitions')} partitions")
    ceil = result.get("ceiling", {})
    t.add_row("ceiling (bare consume + parse + count)", _n(ceil.get("steady_events_per_s"), " ev/s"), "100 %",
              f"{_n(ceil.get('events_per_s'))} ev/s incl. consumer start")
    rows = [(f"workers_{w}", f"stream_app catch-up, {w} worker{'s' if w > 1 else ''}", result.get("catchup", {}))
            for w in (1, 2, 3) if f"workers_{w}" in result.get("catchup", {})]
    _catchups(t, [*rows, ("quix_peer", "Quix Streams peer catch-up", {"quix_peer": result.get("quix_peer", {})})])
    cluster = result.get("cluster", {})
    if "error" in cluster:
        t.add_row("catch-up on three brokers", "failed", "", cluster["error"][:80])
    elif cluster:
        t.add_row("ceiling, three brokers", _n(cluster["ceiling"].get("steady_events_per_s"), " ev/s"), "100 %",
                  "topics with 3 replicas, 2 in sync; the brokers share the cores")
        _catchups(t, [(f"workers_{w}", f"catch-up on three brokers, {w} worker{'s' if w > 1 else ''}", cluster)
                      for w in (1, 2, 3)])
    for s in result.get("sustained", []):
        _sustained(t, "sustained", s, "")
    hot = result.get("hot_user", {})
    if hot:
        t.add_row("one hot user's records", _n(hot.get("hot_per_s"), " rec/s"), "",
                  hot.get("error", f"{_n(hot.get('hot'))} tx in a day, after spread users at "
                                   f"{_n(hot.get('spread_per_s'))} rec/s: hot/spread {_n(hot.get('ratio'), '', 2)} "
                                   f"(target: within 20 %)"))
    for s in result.get("keeps_up", {}).get("steps", []):
        _sustained(t, "stepped", s, "held" if s["held"] else "not held")
    if "error" in result.get("keeps_up", {}):
        t.add_row("stepped", "failed", "", result["keeps_up"]["error"][:80])
    mem = result.get("memory", {})
    t.add_row("worker memory per 100k active users", _n(mem.get("above_idle_per_100k_users_mb"), " MB", 1), "",
              f"RSS at rest after the catch-up {_n(mem.get('rss_mb'), ' MB', 1)} with {_n(mem.get('active_users'))} "
              f"users, an idle worker's {_n(result.get('rss_idle_mb'), ' MB', 1)}; target <= 45 MB")
    rec = result.get("recovery", {})
    t.add_row("recovery after kill -9: first record", _n(rec.get("to_first_record_s"), " s", 1), "",
              rec.get("error", f"at {_n(rec.get('rate'))} tx/s; target <= 3 s"))
    t.add_row("recovery after kill -9: caught up", _n(rec.get("to_caught_up_s"), " s", 1), "",
              "" if "error" in rec else f"lag back to <= {_n(rec.get('normal_lag'))}" if rec.get("caught_up")
              else f"not within the timeout: lag stayed at {_n(rec.get('lag_at_end'))} (commits stalled?)")
    t.add_row("total run time", _n(result.get("seconds"), " s"), "", "")
    return t
