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
OVERWRITE_FLAG = $(if $(filter 1 yes true,$(overwrite)),--overwrite)

.DEFAULT_GOAL := help
.PHONY: help deps demo test lint install-postgres \
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
deps: ## Install the Debian packages of scripts/deps.txt (as root); otherwise say in one line what is missing
	@bash scripts/deps.sh
install-postgres: $(READY) ## Provision PostgreSQL 14 and 18 builds into the cache
	@$(CLI) postgres install 14 18

demo: deps $(READY) ## The tour: the runbook on three local environments, one line per step (VERBOSE=1: all output)
	@bash scripts/demo.sh

test: deps $(READY) install-postgres lint ## Everything: lint, types, unit, integration and reliability tests
	@$(VENV)/bin/python -m pytest -n 3 -q --durations=15; rc=$$?; \
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
	@$(CLI) size $(ENV_FLAG) $(REPLICA_FLAG)
db-table-sizes: $(READY) ## Largest tables: limit=N
	@$(CLI) table-sizes $(ENV_FLAG) $(if $(limit),--limit $(call q,$(limit))) $(REPLICA_FLAG)

# --- Security Management --------------------------------------------------------------------------
# Passwords never reach a command line: password= travels in the environment (the CLI warns that it
# landed in shell history); without it the CLI asks without echo, or reads password_file=/password_env=.
.PHONY: db-create-user db-update-password db-drop-user db-grant-permission db-revoke-permission db-permissions \
	db-setup-roles db-enable-audit db-audit-report db-security-check
PASSWORD_FLAGS = $(if $(value password),--password-env CUISINE_DB_PASSWORD --from-make-command-line) \
	$(if $(password_file),--password-file $(call q,$(password_file))) \
	$(if $(password_env),--password-env $(call q,$(password_env)))
GRANT_ARGS = --username $(call q,$(username)) --permission $(call q,$(permission)) --tables $(call q,$(tables)) \
	$(if $(schema),--schema $(call q,$(schema)))
# $(value ...): a password is taken as typed; make must not expand a '$' inside it.
db-create-user db-update-password: export CUISINE_DB_PASSWORD := $(value password)
db-create-user: $(READY) ## New login role: username=reports [password_file=|password_env=|password=] [valid_until=]
	@$(CLI) security create-user $(ENV_FLAG) --username $(call q,$(username)) $(PASSWORD_FLAGS) $(if $(connection_limit),--connection-limit $(call q,$(connection_limit))) $(if $(valid_until),--valid-until $(call q,$(valid_until)))
db-update-password: $(READY) ## New password for username= (asked twice without echo, or one line of stdin)
	@$(CLI) security update-password $(ENV_FLAG) --username $(call q,$(username)) $(PASSWORD_FLAGS) $(if $(valid_until),--valid-until $(call q,$(valid_until)))
db-drop-user: $(READY) ## Drop username= after showing what it owns [reassign_to=ROLE] (asks, or yes=1)
	@$(CLI) security drop-user $(ENV_FLAG) --username $(call q,$(username)) $(if $(reassign_to),--reassign-to $(call q,$(reassign_to))) $(YES_FLAG)
db-grant-permission: $(READY) ## Grant permission=SELECT[,INSERT] tables=users,recipes|ALL [schema=] to username=
	@$(CLI) security grant $(ENV_FLAG) $(GRANT_ARGS)
db-revoke-permission: $(READY) ## Revoke permission= on tables= [schema=] from username=
	@$(CLI) security revoke $(ENV_FLAG) $(GRANT_ARGS)
db-permissions: $(READY) ## Who can do what on which table [username=]
	@$(CLI) security permissions $(ENV_FLAG) $(if $(username),--username $(call q,$(username)))
db-setup-roles: $(READY) ## The tool's own least-privilege roles: backup, monitoring, operator [rotate=1]
	@$(CLI) security setup-roles $(ENV_FLAG) $(if $(filter 1 yes true,$(rotate)),--rotate)
db-enable-audit: $(READY) ## pgaudit (or log_statement=ddl) and connection logging [classes="ddl, role, write"] [yes=1]
	@$(CLI) security enable-audit $(ENV_FLAG) $(if $(classes),--classes $(call q,$(classes))) $(YES_FLAG)
db-audit-report: $(READY) ## Audit report from the server's logs: start=YYYY-MM-DD end=YYYY-MM-DD [markdown=FILE [overwrite=1]]
	@$(CLI) security audit-report $(ENV_FLAG) $(if $(start),--start $(call q,$(start))) $(if $(end),--end $(call q,$(end))) $(if $(hours),--hours $(call q,$(hours))) $(if $(markdown),--markdown $(call q,$(markdown))) $(OVERWRITE_FLAG) $(REPLICA_FLAG)
db-security-check: $(READY) ## CIS-benchmark checks with fixes; exit 1 on high findings [markdown=FILE [overwrite=1]]
	@$(CLI) security check $(ENV_FLAG) $(if $(markdown),--markdown $(call q,$(markdown))) $(OVERWRITE_FLAG)

# --- Troubleshooting and monitoring ---------------------------------------------------------------
# Variables: pid (db-terminate-query), mode=auto|cancel|terminate, nagios=1 and window=SECONDS (db-monitor),
# days (db-growth); limit also serves db-table-sizes and db-growth.
.PHONY: db-connections db-show-locks db-terminate-query db-monitor db-growth
db-connections: $(READY) ## Connection slots in use, by database/user/application/client/state; leaks; verdict
	@$(CLI) connections $(ENV_FLAG)
db-show-locks: $(READY) ## Blocking tree: root blockers first, waiting sessions beneath
	@$(CLI) locks $(ENV_FLAG)
db-terminate-query: $(READY) ## Stop pid=N: cancel, then terminate if needed (mode=terminate|cancel; yes=1 on protected envs)
	@$(CLI) terminate-query $(ENV_FLAG) --pid $(call q,$(pid)) $(if $(mode),--mode $(call q,$(mode))) $(YES_FLAG)
db-monitor: $(READY) ## The daily checks; exit 1 on a finding (nagios=1: Nagios exit codes and status line)
	@$(CLI) monitor $(ENV_FLAG) $(if $(filter 1 yes true,$(nagios)),--nagios) $(if $(window),--window $(call q,$(window)))
db-growth: $(READY) ## Growth per table over time and days until the disk is full: days=N limit=N
	@$(CLI) growth $(ENV_FLAG) $(if $(days),--days $(call q,$(days))) $(if $(limit),--limit $(call q,$(limit)))
# Archiving old data (the runbook's Monthly "Archive old data if applicable"): table=, older-than=365d (h, d or w),
# column= (default started_at for executions, else created_at), batch=N rows per delete transaction, pause=200ms
# between batches, dry-run=1; restore=1 archive=NAME|latest brings an archive's rows back.
.PHONY: db-archive-data db-archives db-verify-archive
ARCHIVE_CREATE = create --older-than $(call q,$(older-than)) $(if $(column),--column $(call q,$(column))) \
	$(if $(batch),--batch-size $(call q,$(batch))) $(if $(pause),--pause $(call q,$(pause))) $(call flag01,dry-run,--dry-run)
db-archive-data: $(READY) ## Archive rows of table= older than older-than=365d to the repository, then delete them in batches (restore=1 archive=NAME: back; yes=1 on protected envs)
	@$(CLI) archive $(if $(filter 1 yes true,$(restore)),restore --archive $(call q,$(archive)),$(call flag01,restore,)$(ARCHIVE_CREATE)) $(ENV_FLAG) $(if $(table),--table $(call q,$(table))) $(YES_FLAG)
db-archives: $(READY) ## env's archives: table, cutoff, rows, size, state (deleted, pending, restored), last check
	@$(CLI) archive list $(ENV_FLAG)
db-verify-archive: $(READY) ## Decrypt archive=NAME and check its checksums and row counts; recorded next to it
	@$(CLI) archive verify $(call q,$(archive)) $(ENV_FLAG)
# --- Performance Tuning -------------------------------------------------------------------------
# A 0/1 make variable as a CLI flag; any other value stops make with one line (exit 2) rather than guessing.
flag01 = $(if $(filter 1 yes true,$($(1))),$(2),$(if $(filter-out 0 no false,$($(1))),$(error $(1)=$($(1)): give $(1)=1 or $(1)=0)))
.PHONY: db-slow-queries db-explain db-analyze db-analyze-table db-create-index db-remove-unused-indexes \
	db-vacuum-analyze db-show-config db-update-config db-recommend-config
db-slow-queries: $(READY) ## Statements with the most total time (pg_stat_statements): limit=N
	@$(CLI) slow-queries $(ENV_FLAG) $(if $(limit),--limit $(call q,$(limit))) $(REPLICA_FLAG)
db-explain: $(READY) ## EXPLAIN (ANALYZE, BUFFERS), always rolled back: query="..." [analyze=0] [params=v1,v2] [timeout=30s] [yes=1]
	@$(CLI) explain $(ENV_FLAG) $(call q,$(query)) $(if $(filter 0 no false,$(analyze)),--plan-only,$(call flag01,analyze,)) $(if $(params),--params $(call q,$(params))) $(if $(timeout),--timeout $(call q,$(timeout))) $(YES_FLAG)
db-analyze: $(READY) ## Weekly index analysis and recommended indexes, all tables: [method=auto|hypopg|rules] [min_days=N]
	@$(CLI) analyze $(ENV_FLAG) $(if $(method),--method $(call q,$(method))) $(if $(min_days),--min-days $(call q,$(min_days)))
db-analyze-table: $(READY) ## Index analysis and recommended indexes for one table: table=recipes
	@$(CLI) analyze $(ENV_FLAG) --table $(call q,$(table)) $(if $(method),--method $(call q,$(method))) $(if $(min_days),--min-days $(call q,$(min_days)))
db-create-index: $(READY) ## CREATE INDEX CONCURRENTLY: table=recipes columns=user_id,created_at [name=] [lock_timeout=] [timeout=]
	@$(CLI) index create $(ENV_FLAG) --table $(call q,$(table)) --columns $(call q,$(columns)) $(if $(name),--name $(call q,$(name))) $(if $(lock_timeout),--lock-timeout $(call q,$(lock_timeout))) $(if $(timeout),--timeout $(call q,$(timeout)))
db-remove-unused-indexes: $(READY) ## DROP INDEX CONCURRENTLY what is unused: [dry-run=1] [min_days=N] (yes=1 on protected envs)
	@$(CLI) index remove-unused $(ENV_FLAG) $(call flag01,dry-run,--dry-run) $(if $(min_days),--min-days $(call q,$(min_days))) $(YES_FLAG)
db-vacuum-analyze: $(READY) ## VACUUM (ANALYZE) table=T (comma-separated for several), with last runs before and after
	@$(CLI) vacuum-analyze $(ENV_FLAG) --table $(call q,$(table))
db-show-config: $(READY) ## Non-default settings: source, context, pending restart ([all=1] for every one)
	@$(CLI) config show $(ENV_FLAG) $(call flag01,all,--all)
db-update-config: $(READY) ## Validated ALTER SYSTEM + reload: param=max_connections value=200 [restart=1] [reset=1] [ram=16GB] (yes=1 on protected envs and for *_command/libraries)
	@$(CLI) config update $(ENV_FLAG) $(call q,$(param)) $(if $(filter 1 yes true,$(reset)),--reset $(if $(value),$(call q,$(value))),$(call flag01,reset,) $(call q,$(value))) $(call flag01,restart,--restart) $(if $(ram),--ram $(call q,$(ram))) $(YES_FLAG)
db-recommend-config: $(READY) ## Runbook rules + PGTune + live evidence, as db-update-config lines: [disk=ssd|hdd] [ram=16GB] [cpus=N]
	@$(CLI) config recommend $(ENV_FLAG) $(if $(disk),--disk $(call q,$(disk))) $(if $(ram),--ram $(call q,$(ram))) $(if $(cpus),--cpus $(call q,$(cpus)))

# --- Backup and Recovery --------------------------------------------------------------------------
# The runbook writes `make db-maintenance-mode enable` and `make maintenance-mode disable`: the word arrives as a
# second goal, read here from MAKECMDGOALS; `enable` and `disable` themselves do nothing.
.PHONY: db-backup db-backups db-restore db-restore-tables db-verify-backup db-test-restore db-expire-backups \
	db-restore-leftovers db-maintenance-mode maintenance-mode enable disable
MAINTENANCE_WORD = $(firstword $(filter enable disable,$(MAKECMDGOALS)))
MAINTENANCE = $(CLI) maintenance $(or $(MAINTENANCE_WORD),status) $(ENV_FLAG) \
	$(if $(and $(filter enable,$(MAINTENANCE_WORD)),$(reason)),--reason $(call q,$(reason)))

db-backup: $(READY) ## Back up env: type=full|incremental (the cluster, PITR base) or logical|schema|data|tables [tables=a,b] [replica=NAME|any or from=replica: full or logical]
	@$(CLI) backup create $(ENV_FLAG) --type $(call q,$(type)) $(if $(tables),--tables $(call q,$(tables))) $(REPLICA_FLAG) $(if $(from),--from $(call q,$(from)))
db-backups: $(READY) ## env's backups: name, type, size, duration, last verification and test restore
	@$(CLI) backup list $(ENV_FLAG)
db-restore: $(READY) ## Full restore of env from backup=NAME|latest (protected: maintenance mode and yes=1) [open=0|1]
	@$(CLI) restore database $(ENV_FLAG) --backup $(call q,$(backup)) $(YES_FLAG) $(if $(filter 0 no false,$(analyze)),--no-analyze) $(OPEN_FLAG)
db-restore-tables: $(READY) ## Restore tables=a,b of env from backup=NAME|latest in one transaction [target=|lsn=|xid= [inclusive=0]]
	@$(CLI) restore tables $(ENV_FLAG) --backup $(call q,$(backup)) --tables $(call q,$(tables)) $(TARGET_FLAGS) $(YES_FLAG)
db-verify-backup: $(READY) ## Checksums, decryption and pg_restore --list of backup=NAME; recorded in the catalog
	@$(CLI) backup verify $(call q,$(backup)) $(ENV_FLAG)
db-test-restore: $(READY) ## Restore backup=NAME beside env's database (staging), compare row counts, time it
	@$(CLI) restore test $(ENV_FLAG) --backup $(call q,$(backup))
db-expire-backups: $(READY) ## Retention of env's backups: shows the plan, then asks on protected envs (yes=1; dry-run=1 only shows)
	@$(CLI) backup expire $(ENV_FLAG) $(if $(filter 1 yes true,$(dry-run)),--dry-run) $(YES_FLAG)
db-restore-leftovers: $(READY) ## Databases kept by restores on env (drop: cuisine-db restore drop-leftover)
	@$(CLI) restore leftovers $(ENV_FLAG)
db-maintenance-mode: $(READY) ## enable|disable (status without either): block application roles [reason="..."]
	@$(MAINTENANCE)
maintenance-mode: $(READY) ## The runbook's other spelling: maintenance-mode enable reason="..." | disable
	@$(MAINTENANCE)
enable disable:
	@:

# --- Point-in-time recovery -----------------------------------------------------------------------
# The runbook's disaster flow: db-restore env=E backup=latest, then db-apply-logs env=E (the restore waits for it
# under maintenance mode). Variables: target="2026-03-15 12:00:00+00" | lsn=0/3000060 | xid=761 with inclusive=0
# to stop just before it; force=1 (replay across a hole in the archive); table=, min_rows=, hours= (db-find-target);
# open=0|1 (db-restore of a physical backup: wait for db-apply-logs, or open now); restart=1, archive_timeout=.
.PHONY: db-apply-logs db-find-target db-wal-enable db-wal-status db-backup-status db-schedule
TARGET_FLAGS = $(if $(target),--target $(call q,$(target))) $(if $(lsn),--lsn $(call q,$(lsn))) $(if $(xid),--xid $(call q,$(xid))) \
	$(if $(filter 0 no false,$(inclusive)),--exclusive,$(if $(filter-out 1 yes true,$(inclusive)),$(error inclusive=$(inclusive): give inclusive=1 or inclusive=0)))
OPEN_FLAG = $(if $(filter 1 yes true,$(open)),--open,$(if $(filter 0 no false,$(open)),--no-open,$(if $(open),$(error open=$(open): give open=1 or open=0))))
db-apply-logs: $(READY) ## Replay archived WAL onto the restored full backup, then open it: [target="..." | lsn= | xid=] [inclusive=0]
	@$(CLI) restore apply-logs $(ENV_FLAG) $(TARGET_FLAGS) $(call flag01,force,--force)
db-find-target: $(READY) ## DROP, TRUNCATE, big DELETE/UPDATE in the archived WAL, each with the command that stops before it [table=]
	@$(CLI) restore find-target $(ENV_FLAG) $(if $(table),--table $(call q,$(table))) $(if $(min_rows),--min-rows $(call q,$(min_rows))) $(if $(hours),--hours $(call q,$(hours)))
db-wal-enable: $(READY) ## WAL archiving on: archive_mode, archive_command (cuisine-db wal push), archive_timeout [restart=1]
	@$(CLI) wal enable $(ENV_FLAG) $(if $(archive_timeout),--archive-timeout $(call q,$(archive_timeout))) $(call flag01,restart,--restart) $(YES_FLAG)
db-wal-status: $(READY) ## Last archived segment and its age, failures, archiver lag, holes; exit 1 on any
	@$(CLI) wal status $(ENV_FLAG)
db-backup-status: $(READY) ## Exit 1 when the newest full backup is over 26 h old or archived WAL over 16 min
	@$(CLI) backup status $(ENV_FLAG)
db-schedule: $(READY) ## The runbook's schedule as cron lines or systemd timers [format=cron|systemd] [install=1]
	@$(CLI) schedule $(if $(filter 1 yes true,$(install)),install,show) $(ENV_FLAG) $(if $(format),--format $(call q,$(format)))
# --- Read replicas and pooling --------------------------------------------------------------------
# Variables: name (the replica), port, yes=1; from=backup [backup=NAME|latest] seeds db-create-replica from the
# repository's newest physical backup and the WAL archive; replica=NAME|any on db-size, db-table-sizes,
# db-slow-queries, db-audit-report and db-backup (from=replica: type=full or logical from any replica within the lag
# bound).
.PHONY: db-create-replica db-replicas db-promote-replica db-drop-replica db-pooler-config pooler-up pooler-down
REPLICA_FLAG = $(if $(replica),--replica $(call q,$(replica)))
db-create-replica: $(READY) ## Streaming replica of env: name=reports1 [port=N] [from=backup [backup=NAME|latest]] (remote env: prints the steps)
	@$(CLI) replica create $(ENV_FLAG) --name $(call q,$(name)) $(if $(port),--port $(call q,$(port))) $(if $(from),--from $(call q,$(from))) $(if $(backup),--backup $(call q,$(backup)))
db-replicas: $(READY) ## Each replica's state, write/flush/replay lag (bytes, seconds), slot; exit 1 on a problem
	@$(CLI) replica list $(ENV_FLAG)
db-promote-replica: $(READY) ## Make replica name= the primary; the tool follows (asks, or yes=1)
	@$(CLI) replica promote $(ENV_FLAG) --name $(call q,$(name)) $(YES_FLAG)
db-drop-replica: $(READY) ## Stop and remove replica (or former primary) name= and drop its slot
	@$(CLI) replica drop $(ENV_FLAG) --name $(call q,$(name)) $(YES_FLAG)
db-pooler-config: $(READY) ## PgBouncer configuration for env: transaction pooling, auth_query, sized pools
	@$(CLI) pooler config $(ENV_FLAG)
pooler-up: $(READY) ## Start env's PgBouncer (local environments)
	@$(CLI) pooler start $(ENV_FLAG)
pooler-down: $(READY) ## Stop env's PgBouncer
	@$(CLI) pooler stop $(ENV_FLAG)

# --- Disaster Recovery: incidents, integrity, corruption (issue 8) ------------------------------
# Values are read with $(value ...) and not exported, so make never expands what an operator typed:
# description='$(shell ...)' reaches the CLI as text, and the CLI refuses it.
unexport env severity description id note tables jobs
DR_ENV_FLAG = $(if $(value env),--env $(call q,$(value env)))
DR_JOBS_FLAG = $(if $(value jobs),--jobs $(call q,$(value jobs)))
.PHONY: incident-create incident-list incident-resolve incident-report \
	db-verify-integrity db-check-corruption db-verify-tables dr-drill
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
dr-drill: $(READY) ## Complete Database Failure rehearsed on a scratch copy of env: recovery time, data-loss window
	@$(CLI) dr-drill $(DR_ENV_FLAG)
