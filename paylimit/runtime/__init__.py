"""The local services (a real Kafka broker and Redis server as processes) and how commands find them.

Resolution order, as DESIGN.md section 6 says: PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS / PAYLIMIT_REDIS_URL
given -> use them; else (tests only) a Docker engine holding the images -> testcontainers; else the local
processes that `paylimit infra up` started, found through `PAYLIMIT_HOME/infra/state.json`.
"""
