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

# Values are data. Every variable an operator types is read with $(value ...), so make expands nothing in it ($1,
# $(shell ...), ${...} arrive as typed), and reaches the CLI as one shell word: single-quoted, with ' and newlines
# spelled out. A variable given empty (env=) is passed empty for the CLI to refuse; positional values follow `--`,
# so a leading dash is not an option. The CLI validates them all.
define NEWLINE


endef
override q = '$(subst $(NEWLINE),'$$'\n'',$(subst ','\'',$(1)))'
override given = $(or $(value $(1)),$(filter command line,$(origin $(1))))
override v = $(call q,$(value $(1)))
override opt = $(if $(call given,$(1)),$(2) $(call v,$(1)))
# A 0/1 variable: $(2) for 1, $(3) for 0, nothing when not given; any other value stops make with one line (exit 2).
override is = $(and $(filter 1,$(words $(value $(1)))),$(filter $(2),$(value $(1))))
override flag01 = $(if $(call is,$(1),1 yes true),$(2),$(if $(call is,$(1),0 no false),$(3),$(if $(strip $(value $(1))),$(error $(1)=$(strip $(value $(1))): give $(1)=1 or $(1)=0))))
# Make expands an exported variable when it builds a recipe's environment (and command-line variables are exported):
# none of them reaches the CLI's environment, so none is ever expanded there. CUISINE_DB_CONFIG and CUISINE_DB_ENV are
# set in the environment (`CUISINE_DB_ENV=staging make ...`), not as make arguments.
unexport $(foreach _var,$(.VARIABLES),$(if $(filter command line,$(origin $(_var))),$(_var)))
# Every target calls the CLI through $(call cli,...). GNU make exits 2 whenever a recipe fails, so the CLI's own code
# (1 findings, 2 usage, 3 unreachable, 4 refused) is named on one line; the recipe exits with it, and make's
# "Error N" quotes it too. Schedulers and Nagios call .venv/bin/cuisine-db directly to get the code as their exit.
override cli = $(CLI) $(1) || { rc=$$?; case $$rc in 1) m='a check found problems, or the work failed';; \
	2) m='bad input or usage';; 3) m='the server or repository cannot be reached';; 4) m='refused by a safety rail';; \
	130) m='interrupted';; *) m='unexpected failure';; esac; echo "make $@: exit $$rc ($$m)" >&2; exit $$rc; }
ENV_FLAG = $(call opt,env,--env)
YES_FLAG = $(call flag01,yes,--yes)
OVERWRITE_FLAG = $(call flag01,overwrite,--overwrite)

.DEFAULT_GOAL := help
.PHONY: help deps demo test lint install-postgres \
	db-psql db-create-migration db-migrate db-migrate-status db-migrate-lint db-migrate-verify db-rollback db-seed \
	db-size db-table-sizes cluster-up cluster-down cluster-status

$(READY): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "cuisine-db needs Python 3.11 or newer ($(PYTHON) is older)"; exit 2; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,ha]'
	@touch $(READY)

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 26

# --- Set-up, demo, tests --------------------------------------------------------------------------
deps: ## Install the Debian packages of scripts/deps.txt (as root); otherwise say in one line what is missing
	@bash scripts/deps.sh
	@bash scripts/dbmate.sh >/dev/null
install-postgres: $(READY) ## Provision PostgreSQL 14 and 18 builds into the cache
	@$(call cli,postgres install 14 18)

demo: deps $(READY) ## The tour: the runbook on three local environments, one line per step (VERBOSE=1: all output)
	@bash scripts/demo.sh

test: deps $(READY) install-postgres lint ## Everything: lint, types, unit, integration and reliability tests
	@# Byte-code written once, up front: under PYTHONDONTWRITEBYTECODE (set on the CI machine) every cuisine-db the
	@# tests start would otherwise compile the modules it imports from source (about 0.3 s a call) until a
	@# `wal enable` precompiles them.
	@$(VENV)/bin/python -m compileall -q src/cuisine_db >/dev/null
	@$(VENV)/bin/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder -q --durations=25; rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure" >&2; exit 1; fi; exit $$rc

lint: $(READY) ## ruff, mypy (strict) and the import contracts (lint-imports: layers, no circles)
	@$(VENV)/bin/ruff check src tests bench
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports --no-cache

# --- Local clusters -------------------------------------------------------------------------------
cluster-up: $(READY) ## Create and start env's local cluster
	@$(call cli,cluster up $(ENV_FLAG))
cluster-down: $(READY) ## Stop env's local cluster
	@$(call cli,cluster down $(ENV_FLAG))
cluster-status: $(READY) ## Is env's local cluster running?
	@$(call cli,cluster status $(ENV_FLAG))
db-psql: $(READY) ## psql on env
	@$(call cli,psql $(ENV_FLAG))

# --- Database Migrations --------------------------------------------------------------------------
db-create-migration: $(READY) ## New migration: name=add_user_preferences
	@$(call cli,migrate create -- $(call v,name))
db-migrate: $(READY) ## Apply pending migrations to env (force=1: past lint errors on a protected env, journaled)
	@$(call cli,migrate up $(ENV_FLAG) $(call flag01,force,--force))
db-migrate-status: $(READY) ## Applied, pending and drifted migrations on env
	@$(call cli,migrate status $(ENV_FLAG))
db-migrate-lint: $(READY) ## Risky statements (locks, rewrites, data loss) in the migrations
	@$(call cli,migrate lint $(ENV_FLAG))
db-migrate-verify: $(READY) ## Up, down, up on a scratch cluster; compare schemas
	@$(call cli,migrate verify $(ENV_FLAG))
db-rollback: $(READY) ## Roll back: steps=1 or version=YYYYMMDDHHMMSS (yes=1 on protected envs)
	@$(call cli,migrate rollback $(ENV_FLAG) $(call opt,steps,--steps) $(call opt,version,--version) $(YES_FLAG))

# --- Data and sizes -------------------------------------------------------------------------------
db-seed: $(READY) ## Replace env's data with generated Cuisine Code data: scale=N
	@$(call cli,seed $(ENV_FLAG) $(call opt,scale,--scale) $(YES_FLAG))
db-size: $(READY) ## Database size
	@$(call cli,size $(ENV_FLAG) $(REPLICA_FLAG))
db-table-sizes: $(READY) ## Largest tables: limit=N
	@$(call cli,table-sizes $(ENV_FLAG) $(call opt,limit,--limit) $(REPLICA_FLAG))

# --- Security Management --------------------------------------------------------------------------
# Passwords never reach a command line: password= travels in the environment (the CLI warns that it
# landed in shell history); without it the CLI asks without echo, or reads password_file=/password_env=.
.PHONY: db-create-user db-update-password db-drop-user db-grant-permission db-revoke-permission db-permissions \
	db-setup-roles db-enable-audit db-audit-report db-security-check
PASSWORD_FLAGS = $(if $(call given,password),--password-env CUISINE_DB_PASSWORD --from-make-command-line) \
	$(call opt,password_file,--password-file) $(call opt,password_env,--password-env)
GRANT_ARGS = --username $(call v,username) --permission $(call v,permission) --tables $(call v,tables) \
	$(call opt,schema,--schema)
# $(value ...): a password is taken as typed; make must not expand a '$' inside it.
db-create-user db-update-password: export CUISINE_DB_PASSWORD := $(value password)
db-create-user: $(READY) ## New login role: username=reports [password_file=|password_env=|password=] [valid_until=]
	@$(call cli,security create-user $(ENV_FLAG) --username $(call v,username) $(PASSWORD_FLAGS) $(call opt,connection_limit,--connection-limit) $(call opt,valid_until,--valid-until))
db-update-password: $(READY) ## New password for username= (asked twice without echo, or one line of stdin)
	@$(call cli,security update-password $(ENV_FLAG) --username $(call v,username) $(PASSWORD_FLAGS) $(call opt,valid_until,--valid-until))
db-drop-user: $(READY) ## Drop username= after showing what it owns [reassign_to=ROLE] (asks, or yes=1)
	@$(call cli,security drop-user $(ENV_FLAG) --username $(call v,username) $(call opt,reassign_to,--reassign-to) $(YES_FLAG))
db-grant-permission: $(READY) ## Grant permission=SELECT[,INSERT] tables=users,recipes|ALL [schema=] to username=
	@$(call cli,security grant $(ENV_FLAG) $(GRANT_ARGS))
db-revoke-permission: $(READY) ## Revoke permission= on tables= [schema=] from username=
	@$(call cli,security revoke $(ENV_FLAG) $(GRANT_ARGS))
db-permissions: $(READY) ## Who can do what on which table [username=]
	@$(call cli,security permissions $(ENV_FLAG) $(call opt,username,--username))
db-setup-roles: $(READY) ## The tool's own least-privilege roles: backup, monitoring, operator [rotate=1]
	@$(call cli,security setup-roles $(ENV_FLAG) $(call flag01,rotate,--rotate))
db-enable-audit: $(READY) ## pgaudit (or log_statement=ddl) and connection logging [classes="ddl, role, write"] [yes=1]
	@$(call cli,security enable-audit $(ENV_FLAG) $(call opt,classes,--classes) $(YES_FLAG))
db-audit-report: $(READY) ## Audit report from the server's logs: start=YYYY-MM-DD end=YYYY-MM-DD [markdown=FILE [overwrite=1]]
	@$(call cli,security audit-report $(ENV_FLAG) $(call opt,start,--start) $(call opt,end,--end) $(call opt,hours,--hours) $(call opt,markdown,--markdown) $(OVERWRITE_FLAG) $(REPLICA_FLAG))
db-security-check: $(READY) ## CIS-benchmark checks with fixes; exit 1 on high findings [markdown=FILE [overwrite=1]]
	@$(call cli,security check $(ENV_FLAG) $(call opt,markdown,--markdown) $(OVERWRITE_FLAG))

# --- Troubleshooting and monitoring ---------------------------------------------------------------
# Variables: pid (db-terminate-query), mode=auto|cancel|terminate, nagios=1 and window=SECONDS (db-monitor),
# days (db-growth); limit also serves db-table-sizes and db-growth.
.PHONY: db-connections db-show-locks db-terminate-query db-monitor db-growth
db-connections: $(READY) ## Connection slots in use, by database/user/application/client/state; leaks; verdict
	@$(call cli,connections $(ENV_FLAG))
db-show-locks: $(READY) ## Blocking tree: root blockers first, waiting sessions beneath
	@$(call cli,locks $(ENV_FLAG))
db-terminate-query: $(READY) ## Stop pid=N: cancel, then terminate if needed (mode=terminate|cancel; yes=1 on protected envs)
	@$(call cli,terminate-query $(ENV_FLAG) --pid $(call v,pid) $(call opt,mode,--mode) $(YES_FLAG))
db-monitor: $(READY) ## The daily checks; exit 1 on a finding (nagios=1: Nagios exit codes and status line)
	@$(call cli,monitor $(ENV_FLAG) $(call flag01,nagios,--nagios) $(call opt,window,--window))
db-growth: $(READY) ## Growth per table over time and days until the disk is full: days=N limit=N
	@$(call cli,growth $(ENV_FLAG) $(call opt,days,--days) $(call opt,limit,--limit))
.PHONY: db-dashboard
db-dashboard: $(READY) ## Read-only web dashboard on 127.0.0.1:8080: [port=N] [address=IP (needs dashboard_token_env)]
	@$(call cli,dashboard $(ENV_FLAG) $(call opt,port,--port) $(call opt,address,--address))
# Archiving old data (the runbook's Monthly "Archive old data if applicable"): table=, older-than=365d (h, d or w),
# column= (default started_at for executions, else created_at), batch=N rows per delete transaction, pause=200ms
# between batches, dry-run=1; restore=1 archive=NAME|latest brings an archive's rows back.
.PHONY: db-archive-data db-archives db-verify-archive
ARCHIVE_CREATE = create --older-than $(call v,older-than) $(call opt,column,--column) $(call opt,batch,--batch-size) \
	$(call opt,pause,--pause) $(call flag01,dry-run,--dry-run)
db-archive-data: $(READY) ## Archive rows of table= older than older-than=365d to the repository, then delete them in batches (restore=1 archive=NAME: back; yes=1 on protected envs)
	@$(call cli,archive $(or $(call flag01,restore,restore --archive $(call v,archive) $(call flag01,trust_unsigned,--trust-unsigned)),$(ARCHIVE_CREATE)) $(ENV_FLAG) $(call opt,table,--table) $(YES_FLAG))
db-archives: $(READY) ## env's archives: table, cutoff, rows, size, state (deleted, pending, restored), last check
	@$(call cli,archive list $(ENV_FLAG))
db-verify-archive: $(READY) ## Decrypt archive=NAME and check its checksums and row counts; recorded next to it
	@$(call cli,archive verify $(ENV_FLAG) -- $(call v,archive))
# --- Performance Tuning -------------------------------------------------------------------------
.PHONY: db-slow-queries db-explain db-analyze db-analyze-table db-create-index db-remove-unused-indexes \
	db-vacuum-analyze db-show-config db-update-config db-recommend-config
db-slow-queries: $(READY) ## Statements with the most total time (pg_stat_statements): limit=N
	@$(call cli,slow-queries $(ENV_FLAG) $(call opt,limit,--limit) $(REPLICA_FLAG))
db-explain: $(READY) ## EXPLAIN (ANALYZE, BUFFERS), always rolled back: query="..." [analyze=0] [params=v1,v2] [timeout=30s] [yes=1]
	@$(call cli,explain $(ENV_FLAG) $(call flag01,analyze,,--plan-only) $(call opt,params,--params) $(call opt,timeout,--timeout) $(YES_FLAG) -- $(call v,query))
db-analyze: $(READY) ## Weekly index analysis and recommended indexes, all tables: [method=auto|hypopg|rules] [min_days=N]
	@$(call cli,analyze $(ENV_FLAG) $(call opt,method,--method) $(call opt,min_days,--min-days))
db-analyze-table: $(READY) ## Index analysis and recommended indexes for one table: table=recipes
	@$(call cli,analyze $(ENV_FLAG) --table $(call v,table) $(call opt,method,--method) $(call opt,min_days,--min-days))
db-create-index: $(READY) ## CREATE INDEX CONCURRENTLY: table=recipes columns=user_id,created_at [name=] [lock_timeout=] [timeout=]
	@$(call cli,index create $(ENV_FLAG) --table $(call v,table) --columns $(call v,columns) $(call opt,name,--name) $(call opt,lock_timeout,--lock-timeout) $(call opt,timeout,--timeout))
db-remove-unused-indexes: $(READY) ## DROP INDEX CONCURRENTLY what is unused: [dry-run=1] [min_days=N] (yes=1 on protected envs)
	@$(call cli,index remove-unused $(ENV_FLAG) $(call flag01,dry-run,--dry-run) $(call opt,min_days,--min-days) $(YES_FLAG))
db-vacuum-analyze: $(READY) ## VACUUM (ANALYZE) table=T (comma-separated for several), with last runs before and after
	@$(call cli,vacuum-analyze $(ENV_FLAG) --table $(call v,table))
db-show-config: $(READY) ## Non-default settings: source, context, pending restart ([all=1] for every one)
	@$(call cli,config show $(ENV_FLAG) $(call flag01,all,--all))
db-update-config: $(READY) ## Validated ALTER SYSTEM + reload: param=max_connections value=200 [restart=1] [reset=1] [ram=16GB] (yes=1 on protected envs and for *_command/libraries)
	@$(call cli,config update $(ENV_FLAG) $(call flag01,reset,--reset) $(call flag01,restart,--restart) $(call opt,ram,--ram) $(YES_FLAG) -- $(call v,param) $(if $(call given,value),$(call v,value)))
db-recommend-config: $(READY) ## Runbook rules + PGTune + live evidence, as db-update-config lines: [disk=ssd|hdd] [ram=16GB] [cpus=N]
	@$(call cli,config recommend $(ENV_FLAG) $(call opt,disk,--disk) $(call opt,ram,--ram) $(call opt,cpus,--cpus))

# --- Backup and Recovery --------------------------------------------------------------------------
# The runbook writes `make db-maintenance-mode enable` and `make maintenance-mode disable`: the word arrives as a
# second goal, read here from MAKECMDGOALS; `enable` and `disable` themselves do nothing.
.PHONY: db-backup db-backups db-restore db-restore-tables db-verify-backup db-test-restore db-expire-backups \
	db-rotate-keys db-reencrypt db-rebuild-watermark db-restore-leftovers db-maintenance-mode maintenance-mode enable disable
MAINTENANCE_WORD = $(firstword $(filter enable disable,$(MAKECMDGOALS)))
MAINTENANCE = maintenance $(or $(MAINTENANCE_WORD),status) $(ENV_FLAG) $(if $(filter enable,$(MAINTENANCE_WORD)),$(call opt,reason,--reason))

db-backup: $(READY) ## Back up env: type=full|incremental (the cluster, PITR base) or logical|schema|data|tables [tables=a,b] [replica=NAME|any or from=replica: full or logical]
	@$(call cli,backup create $(ENV_FLAG) --type $(call v,type) $(call opt,tables,--tables) $(REPLICA_FLAG) $(call opt,from,--from))
db-backups: $(READY) ## env's backups: name, type, size, duration, last verification and test restore
	@$(call cli,backup list $(ENV_FLAG))
db-restore: $(READY) ## Full restore of env from backup=NAME|latest (protected: maintenance mode and yes=1) [open=0|1] [trust_unsigned=1]
	@$(call cli,restore database $(ENV_FLAG) --backup $(call v,backup) $(YES_FLAG) $(call flag01,analyze,,--no-analyze) $(OPEN_FLAG) $(call flag01,trust_unsigned,--trust-unsigned))
db-restore-tables: $(READY) ## Restore tables=a,b of env from backup=NAME|latest in one transaction [target=|lsn=|xid= [inclusive=0]] [trust_unsigned=1]
	@$(call cli,restore tables $(ENV_FLAG) --backup $(call v,backup) --tables $(call v,tables) $(TARGET_FLAGS) $(YES_FLAG) $(call flag01,trust_unsigned,--trust-unsigned))
db-verify-backup: $(READY) ## Checksums, decryption and pg_restore --list of backup=NAME; recorded in the catalog
	@$(call cli,backup verify $(ENV_FLAG) -- $(call v,backup))
db-test-restore: $(READY) ## Restore backup=NAME beside env's database (staging), compare row counts, time it [trust_unsigned=1]
	@$(call cli,restore test $(ENV_FLAG) --backup $(call v,backup) $(call flag01,trust_unsigned,--trust-unsigned))
db-expire-backups: $(READY) ## Retention of env's backups: shows the plan, then asks on protected envs (yes=1; dry-run=1 only shows)
	@$(call cli,backup expire $(ENV_FLAG) $(call flag01,dry-run,--dry-run) $(YES_FLAG))
db-rotate-keys: $(READY) ## New age and signing keys for env's backups; the old identity kept for old backups
	@$(call cli,backup rotate-keys $(ENV_FLAG))
db-reencrypt: $(READY) ## Re-encrypt and re-sign env's backups and WAL to its current keys (dry_run=1 only lists; yes=1)
	@$(call cli,backup reencrypt $(ENV_FLAG) $(call flag01,dry_run,--dry-run) $(YES_FLAG))
db-rebuild-watermark: $(READY) ## A damaged backup high-water mark rebuilt from the repository after checking it (dry_run=1 shows; yes=1)
	@$(call cli,backup rebuild-watermark $(ENV_FLAG) $(call flag01,dry_run,--dry-run) $(YES_FLAG))
db-restore-leftovers: $(READY) ## Databases kept by restores on env (drop: cuisine-db restore drop-leftover)
	@$(call cli,restore leftovers $(ENV_FLAG))
db-maintenance-mode: $(READY) ## enable|disable (status without either): block application roles [reason="..."]
	@$(call cli,$(MAINTENANCE))
maintenance-mode: $(READY) ## The runbook's other spelling: maintenance-mode enable reason="..." | disable
	@$(call cli,$(MAINTENANCE))
enable disable:
	@:

# --- Point-in-time recovery -----------------------------------------------------------------------
# The runbook's disaster flow: db-restore env=E backup=latest, then db-apply-logs env=E (the restore waits for it
# under maintenance mode). Variables: target="2026-03-15 12:00:00+00" | lsn=0/3000060 | xid=761 with inclusive=0
# to stop just before it; force=1 (replay across a hole in the archive); table=, min_rows=, hours= (db-find-target);
# open=0|1 (db-restore of a physical backup: wait for db-apply-logs, or open now); restart=1, archive_timeout=.
.PHONY: db-apply-logs db-find-target db-wal-enable db-wal-status db-backup-status db-schedule
TARGET_FLAGS = $(call opt,target,--target) $(call opt,lsn,--lsn) $(call opt,xid,--xid) $(call flag01,inclusive,,--exclusive)
OPEN_FLAG = $(call flag01,open,--open,--no-open)
db-apply-logs: $(READY) ## Replay archived WAL onto the restored full backup, then open it: [target="..." | lsn= | xid=] [inclusive=0] [trust_unsigned=1]
	@$(call cli,restore apply-logs $(ENV_FLAG) $(TARGET_FLAGS) $(call flag01,force,--force) $(call flag01,trust_unsigned,--trust-unsigned))
db-find-target: $(READY) ## DROP, TRUNCATE, big DELETE/UPDATE in the archived WAL, each with the command that stops before it [table=]
	@$(call cli,restore find-target $(ENV_FLAG) $(call opt,table,--table) $(call opt,min_rows,--min-rows) $(call opt,hours,--hours))
db-wal-enable: $(READY) ## WAL archiving on: archive_mode, archive_command (cuisine-db wal push), archive_timeout [restart=1]
	@$(call cli,wal enable $(ENV_FLAG) $(call opt,archive_timeout,--archive-timeout) $(call flag01,restart,--restart) $(YES_FLAG))
db-wal-status: $(READY) ## Last archived segment and its age, failures, archiver lag, holes; exit 1 on any
	@$(call cli,wal status $(ENV_FLAG))
db-backup-status: $(READY) ## Exit 1 when the newest full backup is over 26 h old or archived WAL over 16 min
	@$(call cli,backup status $(ENV_FLAG))
db-schedule: $(READY) ## The runbook's schedule as cron lines or systemd timers [format=cron|systemd] [install=1]
	@$(call cli,schedule $(or $(call flag01,install,install),show) $(ENV_FLAG) $(call opt,format,--format))
# --- Read replicas and pooling --------------------------------------------------------------------
# Variables: name (the replica), port, yes=1; from=backup [backup=NAME|latest] seeds db-create-replica from the
# repository's newest physical backup and the WAL archive; replica=NAME|any on db-size, db-table-sizes,
# db-slow-queries, db-audit-report and db-backup (from=replica: type=full or logical from any replica within the lag
# bound).
.PHONY: db-create-replica db-replicas db-promote-replica db-drop-replica db-pooler-config pooler-up pooler-down
REPLICA_FLAG = $(call opt,replica,--replica)
db-create-replica: $(READY) ## Streaming replica of env: name=reports1 [port=N] [from=backup [backup=NAME|latest]] (remote env: prints the steps)
	@$(call cli,replica create $(ENV_FLAG) --name $(call v,name) $(call opt,port,--port) $(call opt,from,--from) $(call opt,backup,--backup))
db-replicas: $(READY) ## Each replica's state, write/flush/replay lag (bytes, seconds), slot; exit 1 on a problem
	@$(call cli,replica list $(ENV_FLAG))
db-promote-replica: $(READY) ## Make replica name= the primary; the tool follows (asks, or yes=1)
	@$(call cli,replica promote $(ENV_FLAG) --name $(call v,name) $(YES_FLAG))
db-drop-replica: $(READY) ## Stop and remove replica (or former primary) name= and drop its slot
	@$(call cli,replica drop $(ENV_FLAG) --name $(call v,name) $(YES_FLAG))
db-pooler-config: $(READY) ## PgBouncer configuration for env: transaction pooling, auth_query, sized pools
	@$(call cli,pooler config $(ENV_FLAG))
pooler-up: $(READY) ## Start env's PgBouncer (local environments)
	@$(call cli,pooler start $(ENV_FLAG))
pooler-down: $(READY) ## Stop env's PgBouncer
	@$(call cli,pooler stop $(ENV_FLAG))

# --- Disaster Recovery: incidents, integrity, corruption (issue 8) ------------------------------
DR_JOBS_FLAG = $(call opt,jobs,--jobs)
.PHONY: incident-create incident-list incident-resolve incident-report \
	db-verify-integrity db-check-corruption db-verify-tables dr-drill
incident-create: $(READY) ## Open an incident: severity=1..4 description="..." [env=E: link only E's commands]
	@$(call cli,incident create --severity $(call v,severity) --description $(call v,description) $(ENV_FLAG))
incident-list: $(READY) ## Incidents, newest first
	@$(call cli,incident list)
incident-resolve: $(READY) ## Resolve an incident: id=INC-YYYYMMDD-NN [note="..."]
	@$(call cli,incident resolve $(call opt,note,--note) -- $(call v,id))
incident-report: $(READY) ## An incident's Markdown timeline from the journal: id=INC-YYYYMMDD-NN
	@$(call cli,incident report -- $(call v,id))
db-verify-integrity: $(READY) ## amcheck, checksums, collations, constraints, sequences, invalid indexes [jobs=N]
	@$(call cli,integrity verify $(ENV_FLAG) $(DR_JOBS_FLAG))
db-check-corruption: $(READY) ## pg_amcheck and every other page: damaged tables and indexes, and their repair
	@$(call cli,integrity corruption $(ENV_FLAG) $(DR_JOBS_FLAG))
db-verify-tables: $(READY) ## The corruption and constraint checks for tables=a,b only
	@$(call cli,integrity tables --tables $(call v,tables) $(ENV_FLAG) $(DR_JOBS_FLAG))
dr-drill: $(READY) ## Complete Database Failure rehearsed on a scratch copy of env: recovery time, data-loss window
	@$(call cli,dr-drill $(ENV_FLAG))

# --- Major-version upgrades (issue 18) ---------------------------------------------------------------
.PHONY: db-upgrade
db-upgrade: $(READY) ## Upgrade env's local cluster to=MAJOR with pg_upgrade after a pre-flight [method=clone|copy|link|swap|logical] [replica_identity_full=1] [to_dsn=DSN] [check=1|rehearse=1] [rehearsed=BACKUP] [rollback=1|finish=1] [yes=1]
	@$(call cli,upgrade $(ENV_FLAG) $(call opt,to,--to) $(call opt,method,--method) $(call flag01,replica_identity_full,--replica-identity-full) $(call opt,to_dsn,--to-dsn) $(call flag01,check,--check) $(call flag01,rehearse,--rehearse) $(call opt,rehearsed,--rehearsed) $(call flag01,rollback,--rollback) $(call flag01,finish,--finish) $(YES_FLAG))
