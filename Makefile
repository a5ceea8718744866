# Every target bootstraps itself: uv (installed with pip if missing), then `uv sync --frozen`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen
PY := $(RUN) python

.PHONY: setup run demo test bench lint evaluate mlflow-ui check-deploy image clean readme-settings

setup:
	@command -v uv >/dev/null 2>&1 || test -x $(UV) || python3 -m pip install --user --quiet uv \
	  || python3 -m pip install --quiet --break-system-packages uv
	@$(UV) sync --frozen --quiet

run: setup  ## the service on embedded defaults (live Coinbase feed)
	$(PY) -m blink run

demo: setup  ## the service on the seeded synthetic feed, with labelled anomalies
	# the stream injects an anomaly every 10-20 minutes (~100 a day): a budget of that rate
	BLINK_ALERTS_PER_DAY=100 $(PY) -m blink run --source synthetic --speed 10

test: setup  ## the whole suite (services: PostgreSQL + Redis on 127.0.0.1; Chromium for e2e)
	$(RUN) pytest

bench: setup  ## benchmarks; results written to docs/benchmarks.md
	$(PY) -m bench

lint: setup
	$(RUN) ruff check blink tests bench deploy
	$(RUN) lint-imports

evaluate: setup  ## reproduce docs/evaluation.md
	$(PY) -m bench.evaluation

mlflow-ui: setup  ## browse runs and registry of the store Blink uses
	$(RUN) mlflow ui --backend-store-uri "$$($(PY) -c 'from blink import config; print(config.load().mlflow_uri)')" --port 5000 --workers 1

check-deploy: setup
	$(RUN) pytest -q tests/e2e/test_deploy.py

image:  ## build the container image, smoke-run it, stop it under load (podman or docker)
	bash deploy/image.sh

clean:
	rm -rf .venv .pytest_cache .ruff_cache

readme-settings: setup  ## regenerate the README's settings table from blink/config.py
	$(PY) -c "import re, pathlib; from blink.cli import settings; p = pathlib.Path('README.md'); \
	p.write_text(re.sub(r'<!-- settings-table -->.*<!-- /settings-table -->', \
	lambda _: '<!-- settings-table -->\n' + settings.table_markdown() + '\n<!-- /settings-table -->', \
	p.read_text(), flags=re.S))"
