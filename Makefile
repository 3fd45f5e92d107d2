# cuisine-db: the Cuisine Code database runbook, made real. Targets are spelled as the runbook spells them;
# each is one line calling the CLI. `make help` lists them; docs/runbook.md maps every runbook command.
#
# Variables: env (default: default_env in cuisine-db.toml, or $CUISINE_DB_ENV), name, steps, version,
# yes=1 (confirm destructive work on a protected environment without a prompt), scale, limit.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
CLI := $(VENV)/bin/cuisine-db
READY := $(VENV)/.installed

# Values reach the CLI as single shell words, whatever they contain; the CLI validates them.
q = '$(subst ','\'',$(1))'
ENV_FLAG = $(if $(env),--env $(call q,$(env)))
YES_FLAG = $(if $(filter 1 yes true,$(yes)),--yes)

.DEFAULT_GOAL := help
.PHONY: help demo test lint install-postgres \
	db-psql db-create-migration db-migrate db-migrate-status db-migrate-lint db-migrate-verify db-rollback db-seed \
	db-size db-table-sizes cluster-up cluster-down cluster-status

$(READY): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "cuisine-db needs Python 3.11 or newer ($(PYTHON) is older)"; exit 2; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(READY)

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 26

# --- Set-up, demo, tests --------------------------------------------------------------------------
install-postgres: $(READY) ## Provision PostgreSQL 14 and 18 builds into the cache
	@$(CLI) postgres install 14 18

demo: $(READY) ## The tour: three local environments, migrations, seed data, status and sizes
	@bash scripts/demo.sh

test: $(READY) install-postgres lint ## Everything: lint, types, unit, integration and reliability tests
	@$(VENV)/bin/python -m pytest -n 2 -q; rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure" >&2; exit 1; fi; exit $$rc

lint: $(READY) ## ruff and mypy (strict)
	@$(VENV)/bin/ruff check src tests bench
	@$(VENV)/bin/mypy

# --- Local clusters -------------------------------------------------------------------------------
cluster-up: $(READY) ## Create and start env's local cluster
	@$(CLI) cluster up $(ENV_FLAG)
cluster-down: $(READY) ## Stop env's local cluster
	@$(CLI) cluster down $(ENV_FLAG)
cluster-status: $(READY) ## Is env's local cluster running?
	@$(CLI) cluster status $(ENV_FLAG)
db-psql: $(READY) ## psql on env
	@$(CLI) psql $(ENV_FLAG)

# --- Database Migrations --------------------------------------------------------------------------
db-create-migration: $(READY) ## New migration: name=add_user_preferences
	@$(CLI) migrate create $(call q,$(name))
db-migrate: $(READY) ## Apply pending migrations to env
	@$(CLI) migrate up $(ENV_FLAG)
db-migrate-status: $(READY) ## Applied, pending and drifted migrations on env
	@$(CLI) migrate status $(ENV_FLAG)
db-migrate-lint: $(READY) ## Risky statements (locks, rewrites, data loss) in the migrations
	@$(CLI) migrate lint
db-migrate-verify: $(READY) ## Up, down, up on a scratch cluster; compare schemas
	@$(CLI) migrate verify $(ENV_FLAG)
db-rollback: $(READY) ## Roll back: steps=1 or version=YYYYMMDDHHMMSS (yes=1 on protected envs)
	@$(CLI) migrate rollback $(ENV_FLAG) $(if $(steps),--steps $(call q,$(steps))) $(if $(version),--version $(call q,$(version))) $(YES_FLAG)

# --- Data and sizes -------------------------------------------------------------------------------
db-seed: $(READY) ## Replace env's data with generated Cuisine Code data: scale=N
	@$(CLI) seed $(ENV_FLAG) --scale $(or $(scale),1) $(YES_FLAG)
db-size: $(READY) ## Database size
	@$(CLI) size $(ENV_FLAG)
db-table-sizes: $(READY) ## Largest tables: limit=N
	@$(CLI) table-sizes $(ENV_FLAG) $(if $(limit),--limit $(call q,$(limit)))

# --- Disaster Recovery: incidents, integrity, corruption (issue 8) ------------------------------
# Values are read with $(value ...) and not exported, so make never expands what an operator typed:
# description='$(shell ...)' reaches the CLI as text, and the CLI refuses it.
unexport env severity description id note tables jobs
DR_ENV_FLAG = $(if $(value env),--env $(call q,$(value env)))
DR_JOBS_FLAG = $(if $(value jobs),--jobs $(call q,$(value jobs)))
.PHONY: incident-create incident-list incident-resolve incident-report \
	db-verify-integrity db-check-corruption db-verify-tables
incident-create: $(READY) ## Open an incident: severity=1..4 description="..." [env=E: link only E's commands]
	@$(CLI) incident create --severity $(call q,$(value severity)) --description $(call q,$(value description)) $(DR_ENV_FLAG)
incident-list: $(READY) ## Incidents, newest first
	@$(CLI) incident list
incident-resolve: $(READY) ## Resolve an incident: id=INC-YYYYMMDD-NN [note="..."]
	@$(CLI) incident resolve $(call q,$(value id)) $(if $(value note),--note $(call q,$(value note)))
incident-report: $(READY) ## An incident's Markdown timeline from the journal: id=INC-YYYYMMDD-NN
	@$(CLI) incident report $(call q,$(value id))
db-verify-integrity: $(READY) ## amcheck, checksums, collations, constraints, sequences, invalid indexes [jobs=N]
	@$(CLI) integrity verify $(DR_ENV_FLAG) $(DR_JOBS_FLAG)
db-check-corruption: $(READY) ## pg_amcheck and every other page: damaged tables and indexes, and their repair
	@$(CLI) integrity corruption $(DR_ENV_FLAG) $(DR_JOBS_FLAG)
db-verify-tables: $(READY) ## The corruption and constraint checks for tables=a,b only
	@$(CLI) integrity tables --tables $(call q,$(value tables)) $(DR_ENV_FLAG) $(DR_JOBS_FLAG)
