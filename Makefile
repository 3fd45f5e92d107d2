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

# --- Backup and Recovery --------------------------------------------------------------------------
# The runbook writes `make db-maintenance-mode enable` and `make maintenance-mode disable`: the word arrives as a
# second goal, read here from MAKECMDGOALS; `enable` and `disable` themselves do nothing.
.PHONY: db-backup db-backups db-restore db-restore-tables db-verify-backup db-test-restore db-expire-backups \
	db-restore-leftovers db-maintenance-mode maintenance-mode enable disable
MAINTENANCE_WORD = $(firstword $(filter enable disable,$(MAKECMDGOALS)))
MAINTENANCE = $(CLI) maintenance $(or $(MAINTENANCE_WORD),status) $(ENV_FLAG) \
	$(if $(and $(filter enable,$(MAINTENANCE_WORD)),$(reason)),--reason $(call q,$(reason)))

db-backup: $(READY) ## Back up env: type=logical|schema|data|tables [tables=users,recipes] (full: PITR issue)
	@$(CLI) backup create $(ENV_FLAG) --type $(call q,$(type)) $(if $(tables),--tables $(call q,$(tables)))
db-backups: $(READY) ## env's backups: name, type, size, duration, last verification and test restore
	@$(CLI) backup list $(ENV_FLAG)
db-restore: $(READY) ## Full restore of env from backup=NAME|latest (protected: maintenance mode and yes=1)
	@$(CLI) restore database $(ENV_FLAG) --backup $(call q,$(backup)) $(YES_FLAG) $(if $(filter 0 no false,$(analyze)),--no-analyze)
db-restore-tables: $(READY) ## Restore tables=a,b of env from backup=NAME|latest in one transaction
	@$(CLI) restore tables $(ENV_FLAG) --backup $(call q,$(backup)) --tables $(call q,$(tables)) $(YES_FLAG)
db-verify-backup: $(READY) ## Checksums, decryption and pg_restore --list of backup=NAME; recorded in the catalog
	@$(CLI) backup verify $(call q,$(backup)) $(ENV_FLAG)
db-test-restore: $(READY) ## Restore backup=NAME beside env's database (staging), compare row counts, time it
	@$(CLI) restore test $(ENV_FLAG) --backup $(call q,$(backup))
db-expire-backups: $(READY) ## Grandfather-father-son retention of env's backups (dry-run=1 to preview)
	@$(CLI) backup expire $(ENV_FLAG) $(if $(filter 1 yes true,$(dry-run)),--dry-run)
db-restore-leftovers: $(READY) ## Databases kept by restores on env (drop: cuisine-db restore drop-leftover)
	@$(CLI) restore leftovers $(ENV_FLAG)
db-maintenance-mode: $(READY) ## enable|disable (status without either): block application roles [reason="..."]
	@$(MAINTENANCE)
maintenance-mode: $(READY) ## The runbook's other spelling: maintenance-mode enable reason="..." | disable
	@$(MAINTENANCE)
enable disable:
	@:
