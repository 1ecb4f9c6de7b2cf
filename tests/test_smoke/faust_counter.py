"""A minimal faust-streaming app for the smoke test, run as its own process:

    python -m tests.test_smoke.faust_counter BOOTSTRAP APP_ID IN_TOPIC OUT_TOPIC DATADIR

An agent counts the records of IN_TOPIC per key in a Table (memory store, changelog topic on the
broker) and sends each new count to OUT_TOPIC, so the test can watch the count reach N.
"""

from __future__ import annotations

import sys

import faust


def build(bootstrap: str, app_id: str, in_topic: str, out_topic: str, datadir: str) -> faust.App:
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        autodiscover=False,
        topic_partitions=1,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        datadir=datadir,
    )
    source = app.topic(in_topic, key_serializer="raw", value_serializer="raw", partitions=1)
    sink = app.topic(out_topic, key_serializer="raw", value_serializer="raw", partitions=1)
    counts = app.Table("counts", default=int, partitions=1)

    @app.agent(source)
    async def count(stream: faust.StreamT) -> None:
        async for key, _value in stream.items():
            name = key.decode()
            counts[name] += 1
            await sink.send(key=key, value=str(counts[name]).encode())

    return app


def main(argv: list[str]) -> None:
    app = build(*argv)
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
