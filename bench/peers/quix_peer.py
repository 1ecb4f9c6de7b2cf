"""The peer: paylimit's daily count and alert written with Quix Streams, as a standalone script.

Same job as stream_app on the same topic: parse each JSON record, count successful transactions
per (user, local date in Asia/Kolkata) in Quix's keyed state (RocksDB with a changelog topic,
as faust's table has one), and send an alert to a topic on the transaction that takes the day
over the limit. It imports only quixstreams and the standard library, so it can run in a venv of
its own (quixstreams pins older confluent-kafka and pydantic than paylimit).

It stops itself after `--expect` records and prints JSON lines on stdout: `progress` every second
and `done` (after Quix has committed and closed) with wall-clock times of the first and last record.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from quixstreams import Application, State

started = time.time()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--broker", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--alerts-topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--zone", default="Asia/Kolkata")
    return p.parse_args()


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.time(), **fields}), flush=True)


def main() -> None:
    args = parse_args()
    zone = ZoneInfo(args.zone)
    progress = {"records": 0, "alerts": 0, "first": 0.0, "last": 0.0, "shown": 0.0}
    app = Application(
        broker_address=args.broker, consumer_group=args.group, auto_offset_reset="earliest",
        commit_interval=0.5, state_dir=args.state_dir, loglevel="WARNING",
        on_message_processed=lambda _t, _p, _o: processed(),
    )

    def processed() -> None:
        now = time.time()
        progress["records"] += 1
        if not progress["first"]:
            progress["first"] = now
        progress["last"] = now
        if now - progress["shown"] >= 1.0:
            progress["shown"] = now
            emit("progress", records=progress["records"])
        if progress["records"] >= args.expect:
            app.stop()

    def count(tx: dict, state: State) -> dict | None:
        if tx["status"] != "succeeded":
            return None
        day = datetime.fromisoformat(tx["occurred_at"]).astimezone(zone).date().isoformat()
        n = state.get(day, 0) + 1
        state.set(day, n)
        if n != args.limit + 1:
            return None
        progress["alerts"] += 1
        return {"user_id": tx["user_id"], "local_date": day, "timezone": args.zone, "limit": args.limit,
                "count": n, "crossing_transaction_id": tx["transaction_id"]}

    source = app.topic(args.topic, key_deserializer="str", value_deserializer="json")
    alerts = app.topic(args.alerts_topic, key_serializer="str", value_serializer="json")
    sdf = app.dataframe(source)
    sdf = sdf.apply(count, stateful=True).filter(lambda alert: alert is not None)
    sdf.to_topic(alerts, key=lambda alert: alert["user_id"])
    app.run()
    emit("done", records=progress["records"], alerts=progress["alerts"], started=started,
         first=progress["first"], last=progress["last"])


if __name__ == "__main__":
    main()
