# Blink in one image: `make image` (build + smoke run) or `docker build -t blink .`, then
#   docker run --init -p 8000:8000 -v blink-data:/data blink            (embedded PostgreSQL)
#   docker compose up                                                   (the production stack)
# Everything is installed at build time from uv.lock (exact versions, hash-checked); nothing is
# fetched when it runs. Behind a TLS-intercepting proxy, or with a PyPI mirror (README):
#   docker build --secret id=ca,src=proxy-ca.pem --build-arg INDEX_URL=https://mirror/simple .

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- build: a venv with the locked dependencies, then Blink itself as a wheel -----------
FROM python:3.11-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
# a PyPI mirror or private index (optional; the lock's hashes still decide what installs)
ARG INDEX_URL=""
ENV UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/app/.venv \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# The optional build secret `ca` (a proxy's CA, PEM) joins the system bundle, which apt and uv
# (SSL_CERT_FILE) trust; this stage is not shipped. A C compiler for Blink's two C kernels
# (setup.py); not pinned: Debian stable's point releases replace these versions
# hadolint ignore=DL3008
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then \
      cp /run/secrets/ca /usr/local/share/ca-certificates/build-ca.crt && update-ca-certificates; \
    fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# dependencies first (a layer that changes only with uv.lock): the lock exported with hashes,
# then installed from INDEX_URL or PyPI (`uv sync --frozen` would ignore a mirror)
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv export --frozen --no-dev --no-emit-project --format requirements-txt -o requirements.txt \
    && uv venv "$VIRTUAL_ENV" \
    && uv pip install --require-hashes --no-deps ${INDEX_URL:+--default-index "$INDEX_URL"} \
         -r requirements.txt
# Blink as a package (not editable): a wheel built here, C kernels compiled into it. Then
# bytecode for the modules Blink runs, written by running them (deploy/warm_bytecode.py: one
# MLflow train/log/load round trip; compiling everything was ~70 MB more). Out: tests dirs,
# and what only compiles against the packages (C headers, Cython sources, stubs, static libs)
COPY README.md setup.py ./
COPY blink/ blink/
COPY deploy/warm_bytecode.py /tmp/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --no-deps ${INDEX_URL:+--default-index "$INDEX_URL"} . \
    && find "$VIRTUAL_ENV" -depth -type d -name tests -path "*/site-packages/*" -exec rm -rf {} + \
    && find "$VIRTUAL_ENV" -type f -path "*/site-packages/*" \( -name "*.h" -o -name "*.pxd" \
         -o -name "*.pyx" -o -name "*.pyi" -o -name "*.a" \) -delete \
    && MLFLOW_DISABLE_TELEMETRY=true "$VIRTUAL_ENV/bin/python" /tmp/warm_bytecode.py

# ---- runtime: the venv, the dashboard assets, the config; no source tree, no compiler ------
FROM python:3.11-slim-bookworm AS runtime
# a fixed non-root user (PostgreSQL will not run as root: pgserver would add a user for it)
RUN groupadd --system --gid 10001 blink \
    && useradd --system --uid 10001 --gid blink --create-home --shell /usr/sbin/nologin blink \
    && mkdir -p /data \
    && chown blink:blink /data
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
# blink/web/dashboard.py serves templates/ and static/ from the directory that holds the
# `blink` package's parent (the checkout's root): for an installed package, site-packages
COPY templates/ /app/.venv/lib/python3.11/site-packages/templates/
COPY static/ /app/.venv/lib/python3.11/site-packages/static/
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
