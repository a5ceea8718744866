# syntax=docker/dockerfile:1
# Blink in one image: `docker build -t blink .` then
#   docker run --init -p 8000:8000 -v blink-data:/data blink            (embedded PostgreSQL)
#   docker compose up                                                   (the production stack)
# Everything is installed at build time from uv.lock; nothing is fetched when it runs.

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- build: the locked dependencies into /app/.venv -------------------------------------
FROM python:3.11-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# a C compiler for Blink's two C kernels (setup.py); it stays in this stage. Not pinned:
# Debian stable's point releases replace these versions, and a pin would break the build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# dependencies first (a layer that changes only with uv.lock), then the project itself
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY README.md setup.py ./
COPY blink/ blink/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# ---- runtime: the venv, the code (with its built kernels), the dashboard assets; no compiler ------------------
FROM python:3.11-slim-bookworm AS runtime
# a fixed non-root user (PostgreSQL will not run as root: pgserver would add a user for it)
RUN groupadd --system --gid 10001 blink \
    && useradd --system --uid 10001 --gid blink --create-home --shell /usr/sbin/nologin blink \
    && mkdir -p /data \
    && chown blink:blink /data
WORKDIR /app
COPY --from=build /app /app
COPY templates/ templates/
COPY static/ static/
COPY config.toml ./
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    BLINK_DATA_DIR=/data \
    BLINK_HOST=0.0.0.0 \
    BLINK_PORT=8000
# embedded PostgreSQL, the sqlite MLflow store and spill files live here
VOLUME ["/data"]
EXPOSE 8000
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BLINK_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["python", "-m", "blink"]
CMD ["run"]
