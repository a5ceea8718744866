#!/usr/bin/env bash
# `make image`: build the container image with podman or docker, then smoke-run it: the
# synthetic feed as fast as possible on the embedded PostgreSQL, /healthz and the HEALTHCHECK,
# a non-root uid, /score ready (a model trained, logged to the sqlite MLflow store, served),
# /demo and the offline plotly.js; then a stop under that backlog, which must exit 0 within the
# 10 s a runtime allows (`stop -t 10`). Prints the image size and the stop time.
# Env: IMAGE (blink:latest), PORT (18778), BUILD_CA (a proxy's CA file: the `ca` build secret),
# INDEX_URL (a PyPI mirror: build arg). The base images must be pullable or already present.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-blink:latest} PORT=${PORT:-18778} NAME=blink-image-smoke
ENGINE=$(command -v podman || command -v docker || true)
if [ -z "$ENGINE" ]; then
  echo "make image: neither podman nor docker is installed (e.g. apt-get install podman)." >&2
  echo "Without a container registry, see README 'Container' for building from local bases." >&2
  exit 2
fi
args=(build -t "$IMAGE")
[ "$(basename "$ENGINE")" = podman ] && args+=(--format docker)  # keeps HEALTHCHECK
[ -n "${BUILD_CA:-}" ] && args+=(--secret "id=ca,src=$BUILD_CA")
[ -n "${INDEX_URL:-}" ] && args+=(--build-arg "INDEX_URL=$INDEX_URL")
"$ENGINE" "${args[@]}" .

trap '"$ENGINE" rm -f "$NAME" >/dev/null 2>&1 || true' EXIT
"$ENGINE" rm -f "$NAME" >/dev/null 2>&1 || true
"$ENGINE" run -d --name "$NAME" --init -p "127.0.0.1:$PORT:8000" "$IMAGE" \
  run --source synthetic --speed 0 >/dev/null
url=http://127.0.0.1:$PORT
wait_for() {  # wait_for WHAT TRIES CMD...
  local what=$1 tries=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "smoke: $what never happened; log:" >&2; "$ENGINE" logs "$NAME" 2>&1 | tail -40 >&2
  return 1
}
wait_for "/healthz 200" 120 curl -fs -m 2 "$url/healthz"
if [ "$(basename "$ENGINE")" = podman ]; then "$ENGINE" healthcheck run "$NAME"; fi
uid=$("$ENGINE" exec "$NAME" id -u); [ "$uid" != 0 ] || { echo "smoke: runs as root" >&2; exit 1; }
wait_for "/score ready" 300 sh -c "curl -fs -m 3 $url/score | grep -q '\"ready\": *true'"
curl -fs -m 3 -o /dev/null "$url/demo" && curl -fs -m 3 -o /dev/null "$url/static/vendor/plotly.min.js"
queued=$(curl -fs -m 3 "$url/readyz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["components"]["writer"].get("queued"))')
start=$(date +%s.%N); "$ENGINE" stop -t 10 "$NAME" >/dev/null; end=$(date +%s.%N)
code=$("$ENGINE" inspect -f '{{.State.ExitCode}}' "$NAME")
"$ENGINE" logs "$NAME" 2>&1 | grep -E "shutdown:|stopped" | tail -3
size=$("$ENGINE" image inspect -f '{{.Size}}' "$IMAGE")
printf 'image %s: %s MB; uid %s; stop with %s trades queued: %.1f s, exit %s\n' "$IMAGE" \
  "$((size / 1000000))" "$uid" "$queued" "$(echo "$end - $start" | bc)" "$code"
[ "$code" = 0 ] || { echo "smoke: exit code $code after stop (137 = killed)" >&2; exit 1; }
