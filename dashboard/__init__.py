"""The live dashboard: a small aiohttp process that reads the worker's HTTP views, the
notifications stream in Redis and Kafka's offsets, and serves one hand-written page.

Reading order: `stats.py` (pure decisions: rates, percentiles, which users are near or over)
-> `sources.py` (the worker's HTTP views, the Redis stream) -> `offsets.py` (Kafka: offsets, lag,
which users are active) -> `collector.py` (polls them all, keeps a short history) -> `server.py`.
It imports only the shared floor (contracts, settings, kafka), never another service.
"""
