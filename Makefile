# Tandem: `make run` and `make test` install what they need, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.stamp-pip
NPM_STAMP := frontend/node_modules/.stamp-npm
SPA := frontend/dist/index.html
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install system-deps frontend lint pytest frontend-test e2e clean

run: install $(SPA)
	$(VENV)/bin/tandem dev --host $(HOST) --port $(PORT)

test: install system-deps $(SPA) lint
	$(PY) -m pytest
	cd frontend && npm test
	cd frontend && npm run e2e

install: $(PIP_STAMP) $(NPM_STAMP)

$(PIP_STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -c constraints.txt
	touch $@

$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

$(SPA): $(NPM_STAMP) frontend/package.json $(wildcard frontend/vite.config.* frontend/tsconfig*.json) $(shell find frontend/src frontend/public frontend/index.html -type f 2>/dev/null)
	cd frontend && npm run build

frontend: $(SPA)

# Debian's chromium (browser tests), nginx (the real proxy in front) and docker-compose
# (validating the compose files), installed only where missing. CHROMIUM_BIN names another
# Chromium-based browser to use instead (the GitHub workflow's preinstalled Chrome).
system-deps:
	@missing=""; \
	if [ -n "$$CHROMIUM_BIN" ]; then test -x "$$CHROMIUM_BIN" || { echo "CHROMIUM_BIN=$$CHROMIUM_BIN is not an executable" >&2; exit 1; }; \
	else command -v chromium >/dev/null || missing="$$missing chromium"; fi; \
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || missing="$$missing nginx"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Lint and types (part of make test): ruff and mypy (configured in pyproject.toml), tsc and ESLint.
lint: install
	$(VENV)/bin/ruff check backend worker tests benchmarks
	$(VENV)/bin/ruff format --check backend worker tests benchmarks
	$(VENV)/bin/mypy
	cd frontend && npm run typecheck && npm run lint

pytest: install
	$(PY) -m pytest

frontend-test: $(NPM_STAMP)
	cd frontend && npm test

e2e: install system-deps $(SPA)
	cd frontend && npm run e2e

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist test-output

# The real-MongoDB tests (pytest -m mongodb) against MONGODB_URI, which must name a replica set.
# Unset: prints how to start a single-node replica set with Docker, and fails.
.PHONY: test-mongodb
test-mongodb: $(PIP_STAMP)
	@if [ -z "$$MONGODB_URI" ]; then \
		echo "MONGODB_URI is not set. A single-node replica set with Docker:" >&2; \
		echo "  docker run -d --name tandem-mongo -p 127.0.0.1:27017:27017 mongo:7 --replSet rs0 --bind_ip_all" >&2; \
		echo "  docker exec tandem-mongo mongosh --quiet --eval \"rs.initiate({_id: 'rs0', members: [{_id: 0, host: 'localhost:27017'}]})\"" >&2; \
		echo "then: MONGODB_URI='mongodb://localhost:27017/?replicaSet=rs0&directConnection=true' make test-mongodb" >&2; \
		exit 2; \
	fi
	$(PY) -m pytest -m mongodb -ra -p no:randomly
