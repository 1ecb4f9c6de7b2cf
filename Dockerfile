# paylimit services (worker, notifier, dashboard, simulator) for docker-compose.yml.
# PYTHON_IMAGE: another image with Python 3.11 and pip on PATH, e.g. a local stand-in where no
# registry answers (docker/compose.local.yml).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# the dependencies first, in a layer of their own: a change to the code does not download them again
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY README.md ./
COPY paylimit ./paylimit
COPY producer_sim ./producer_sim
COPY stream_app ./stream_app
COPY notifier ./notifier
COPY dashboard ./dashboard
COPY bench ./bench
RUN pip install --no-deps . && useradd --create-home --uid 1000 paylimit && mkdir /data && chown paylimit /data

USER paylimit
ENV PAYLIMIT_HOME=/data
VOLUME ["/data"]
ENTRYPOINT ["paylimit"]
CMD ["--help"]
