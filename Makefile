# The project's commands. `make test` and `make db` install what they need first:
# the venv, and (as root on Debian/Ubuntu) PostgreSQL 15, pg_cron, plpgsql_check and
# Chromium from apt.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DB ?= dev
# Extra options for `make play` / `make bot`, e.g. make play ARGS="--name Ann"
ARGS ?=
# Every Python package's version, pinned (make lock refreshes it).
LOCK := requirements.lock

# Debian packages the tests need, and a file that proves each one is there.
APT_PACKAGES := postgresql-15:/usr/lib/postgresql/15/bin/pg_ctl \
	postgresql-15-cron:/usr/share/postgresql/15/extension/pg_cron.control \
	postgresql-15-plpgsql-check:/usr/share/postgresql/15/extension/plpgsql_check.control \
	postgresql-15-plproxy:/usr/share/postgresql/15/extension/plproxy.control \
	chromium:/usr/bin/chromium \
	fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
	prometheus:/usr/bin/promtool \
	prometheus-postgres-exporter:/usr/bin/prometheus-postgres-exporter \
	pgbackrest:/usr/bin/pgbackrest \
	wrk:/usr/bin/wrk \
	python3-venv:

.PHONY: help test lint setup lock system-deps db db-stop db-destroy migrate schema release-migrations psql bot play \
	bench bench-quick bench-quick-run clean messages compile-messages \
	docker-engine docker-engine-stop images test-containers test-compose backup restore

help:
	@echo "make test        run every test against a real PostgreSQL 15 + pg_cron (installs what it needs)"
	@echo "make lint        ruff (lint, import order) and mypy (strict for bot/ and db/)"
	@echo "make play        play in the terminal without Telegram (local database started on the way);"
	@echo "                 options: make play ARGS=\"--name Ann --language ru\"; ARGS=\"--fast-clock\": she is rested sooner"
	@echo "make webapp      the Mini App with data on 127.0.0.1:8080, offline, for a local player (prints its URL)"
	@echo "make bot         run the bot (python -m bot; BOT_TOKEN etc. from the environment or .env)"
	@echo "make db          start the local database (.localdb/$(DB)) and apply the migrations"
	@echo "make migrate     apply migrations to \$$MIGRATION_DATABASE_URL (unset: the local database)"
	@echo "make schema      regenerate db/schema.sql (the committed schema dump) after changing a migration"
	@echo "make release-migrations   when tagging a release: its migrations join db/migrations/RELEASED.sha256"
	@echo "make lock        refresh requirements.lock (newest versions pyproject.toml allows, from PyPI)"
	@echo "make psql        psql into the local database as superuser"
	@echo "make bench       run the benchmarks at full size (slow); bench-quick: small sizes"
	@echo "make messages    extract the texts into bot/locales/messages.pot and merge it into every .po file"
	@echo "make compile-messages   compile the .po catalogues into the .mo files the bot loads (commit both)"
	@echo "make backup      pgBackRest backup of the local database (WAL archiving set up on the first run;"
	@echo "                 TYPE=full|diff|incr, default incr: a full one when there is none)"
	@echo "make restore TIME='2026-12-07 12:00:00+00'   point-in-time restore of the local database, in place"
	@echo "make db-stop / db-destroy / clean"
	@echo "make docker-engine       use the Docker engine that answers, or start a private one (root); prints DOCKER_HOST"
	@echo "make docker-engine-stop  stop the engine make docker-engine started (by its pid)"
	@echo "make images              build waifu-bot/db, waifu-bot/db-proxy and waifu-bot/bot (no registry needed)"
	@echo "make test-containers     tests/core and tests/bot with the database in a container (testcontainers)"
	@echo "make test-compose        the docker-compose stack end to end (up, play through a Telegram stand-in, down -v)"

test: setup
	$(PY) -m pytest

# Lint and types; CI runs it before the tests. `ruff check --fix` sorts imports.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

setup: system-deps $(VENV)/.installed

# Installs exactly the versions in $(LOCK) (constraints: only what pyproject.toml asks for).
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c $(LOCK) -e '.[test,dev]'
	touch $@

# Re-resolves pyproject.toml's dependencies and extras to the newest allowed releases and
# pins them in $(LOCK); review the diff, run make test, commit both.
lock: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --upgrade --extra test --extra dev --strip-extras \
		--no-emit-index-url --no-emit-trusted-host --no-emit-find-links --output-file $(LOCK) pyproject.toml
	$(VENV)/bin/pip install --quiet -c $(LOCK) -e '.[test,dev]'

# Installs missing Debian packages when root; otherwise says what to install.
system-deps:
	@missing=""; \
	for entry in $(APT_PACKAGES); do \
		pkg=$${entry%%:*}; file=$${entry#*:}; \
		if [ -n "$$file" ]; then [ -e "$$file" ] || missing="$$missing $$pkg"; \
		else $(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing $$pkg"; fi; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing Debian packages:$$missing"; \
			echo "run: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

# The local clusters' passwords are in .localdb/pgpass (db/localdb.py): libpq reads them
# through PGPASSFILE, so no URL or command line carries one.
LOCAL_PGPASSFILE = $${PGPASSFILE:-$(CURDIR)/.localdb/pgpass}

db: setup
	$(PY) -m db.localdb start --name $(DB)
	PGPASSFILE="$(LOCAL_PGPASSFILE)" MIGRATION_DATABASE_URL="$$($(PY) -m db.localdb url --name $(DB))" \
		$(PY) -m db.migrate apply
	@$(PY) -m db.localdb env --name $(DB)

db-stop:
	$(PY) -m db.localdb stop --name $(DB)

db-destroy:
	$(PY) -m db.localdb destroy --name $(DB)

migrate: setup
	if [ -z "$$MIGRATION_DATABASE_URL" ]; then export PGPASSFILE="$(LOCAL_PGPASSFILE)"; fi; \
	$(PY) -m db.migrate apply --database "$${MIGRATION_DATABASE_URL:-$$($(PY) -m db.localdb url --name $(DB))}"

# db/schema.sql from a throwaway cluster migrated from scratch (tests/core/test_migrations.py
# fails when it is stale). Commit it with the migration that changed it.
schema: setup
	$(PY) -m db.schema dump

# Run when tagging a release: every migration file not yet listed joins the manifest; from
# then on it never changes (a test checks the hashes), a change is a new migration.
release-migrations:
	@cd db/migrations && for f in [0-9]*.sql; do \
		cut -c67- RELEASED.sha256 | grep -qxF "$$f" || { sha256sum "$$f" >> RELEASED.sha256; echo "released: $$f"; }; \
	done

psql:
	PGPASSFILE="$(LOCAL_PGPASSFILE)" psql "$$($(PY) -m db.localdb url --name $(DB))"

# Backups (db/backup/, README "Operations"): pgBackRest, repository in .localdb/<DB>-backup
# (BACKUP_REPO=dir elsewhere). INTO=name restores into a new local cluster instead.
TYPE ?= incr
backup: setup
	$(PY) -m db.backup backup --name $(DB) --type $(TYPE)

restore: setup
	@test -n "$(TIME)" || { echo "usage: make restore TIME='2026-12-07 12:00:00+00' [INTO=name]"; exit 2; }
	$(PY) -m db.backup restore --name $(DB) --time "$(TIME)" $(if $(INTO),--into $(INTO))

bot: setup
	$(PY) -m bot $(ARGS)

# Options after ARGS= (make's own parser would take `make play --name Ann` for itself).
play: setup
	$(PY) -m bot.dev.terminal $(ARGS)

# The Mini App as a local player sees it, without Telegram or the internet (bot/dev/webapp.py):
# prints a URL with signed initData; options after ARGS=, e.g. ARGS="--port 8090 --language ru".
webapp: setup
	$(PY) -m bot.dev.webapp $(ARGS)

# Translations (README "Translations"): gettext catalogues in bot/locales/<lang>/LC_MESSAGES/.
# `messages` extracts the _() / ngettext() texts of bot/ (bot/locales/babel.cfg) into the template and
# merges it into every catalogue: a new text arrives untranslated, a changed one fuzzy
# (tests/bot/test_catalogues.py fails on both until a translator settles them). No
# locations: a line moved in bot/messages.py does not touch every catalogue.
# `compile-messages` writes the .mo files the bot loads; they are committed, so an install
# (pip, the Docker image) needs no build step; a test fails when one is stale.
LOCALES := bot/locales
BABEL_EXTRACT := --no-default-keywords -k _ -k __ -k ngettext:1,2 --add-comments=Translators: \
	--no-location --no-wrap --project=waifu-bot --version=0.1.0

messages: setup
	$(VENV)/bin/pybabel extract -F $(LOCALES)/babel.cfg $(BABEL_EXTRACT) -o $(LOCALES)/messages.pot .
	$(VENV)/bin/pybabel update -i $(LOCALES)/messages.pot -d $(LOCALES) -D messages --no-wrap --ignore-obsolete

compile-messages: setup
	$(VENV)/bin/pybabel compile -d $(LOCALES) -D messages --statistics

bench: setup
	$(PY) -m tests.benchmarks.bench_core
	$(PY) -m tests.benchmarks.bench_bot
	$(PY) -m tests.benchmarks.bench_webapp
	$(PY) -m tests.benchmarks.bench_proxy
	$(PY) -m tests.benchmarks.bench_notify
	$(PY) -m tests.benchmarks.bench_leaderboard

# Small sizes, then the regression gate (tests/benchmarks/gate.py); a gated figure more than
# 20% worse than tests/benchmarks/baseline.json fails only if it does so in a second run too.
bench-quick: setup
	$(MAKE) --no-print-directory bench-quick-run
	$(PY) -m tests.benchmarks.gate || { echo "running the quick benchmarks once more before failing"; \
		$(MAKE) --no-print-directory bench-quick-run && $(PY) -m tests.benchmarks.gate; }

bench-quick-run:
	$(PY) -m tests.benchmarks.bench_core --waifus 20000 --participate-waifus 1000 --seconds 2
	$(PY) -m tests.benchmarks.ab_core --waifus 20000 --runs 1 --seconds 1 --calls 200
	$(PY) -m tests.benchmarks.bench_bot --quick
	$(PY) -m tests.benchmarks.bench_bot --quick --floor
	$(PY) -m tests.benchmarks.bench_webapp --quick
	$(PY) -m tests.benchmarks.bench_notify --quick
	$(PY) -m tests.benchmarks.bench_leaderboard --quick
	$(PY) -m tests.benchmarks.bench_proxy --waifus 20000 --participate-waifus 500 --seconds 2 --tick-runs 1
	$(PY) -m tests.benchmarks.soak_integrity --quick

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis bench-results test-artifacts

# --- Containers (docker-compose, testcontainers) ------------------------------------------
# Each target uses the engine that answers (DOCKER_HOST, /var/run/docker.sock) or starts the
# project's own (.ci/docker-engine: as root, installing docker.io when missing), which
# keeps running until `make docker-engine-stop`.
ENGINE := host=$$(.ci/docker-engine start) || exit 1; eval "$$host"

docker-engine:
	@.ci/docker-engine start

docker-engine-stop:
	@.ci/docker-engine stop

# The Python packages come from a wheelhouse made on the host (requirements.lock's pins), so
# the build needs no PyPI access of its own; WAIFU_WHEELHOUSE=0: pip in the build uses PyPI.
images: setup
	@$(ENGINE); WAIFU_WHEELHOUSE=$${WAIFU_WHEELHOUSE:-1} PYTHON=$(PY) .ci/images

# The db image is built once here; every test session then starts containers from it.
test-containers: setup
	@$(ENGINE); PYTHON=$(PY) .ci/images db && \
		WAIFU_TEST_DB_IMAGE=waifu-bot/db TEST_REQUIRE_DOCKER=1 $(PY) -m pytest tests/core tests/bot $(ARGS)

test-compose: setup
	@$(ENGINE); WAIFU_WHEELHOUSE=$${WAIFU_WHEELHOUSE:-1} PYTHON=$(PY) .ci/images && \
		WAIFU_TEST_COMPOSE=1 $(PY) -m pytest tests/compose $(ARGS)
