# paylimit services (worker, notifier, simulator) for docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY paylimit ./paylimit
COPY producer_sim ./producer_sim
COPY stream_app ./stream_app
COPY notifier ./notifier
COPY bench ./bench
RUN pip install . && useradd --create-home --uid 1000 paylimit && mkdir /data && chown paylimit /data

USER paylimit
ENV PAYLIMIT_HOME=/data
VOLUME ["/data"]
ENTRYPOINT ["paylimit"]
CMD ["--help"]
