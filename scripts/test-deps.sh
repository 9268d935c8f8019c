#!/usr/bin/env bash
# Installs and starts what `make test` needs, idempotently: PostgreSQL (the
# store's second engine) and MariaDB for later capabilities. Safe to run as
# often as you like; on a machine that already has them running it does
# nothing but check.
set -euo pipefail

log() { printf 'test-deps: %s\n' "$*" >&2; }

need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
if ((${#need_apt[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		log "missing ${need_apt[*]} and not root: install them or run as root"
		exit 1
	fi
	log "installing ${need_apt[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! pg_up; then
	log "starting PostgreSQL"
	ver=$(ls /etc/postgresql | sort -V | tail -1)
	pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
	for _ in $(seq 1 30); do pg_up && break; sleep 1; done
	pg_up || { log "PostgreSQL did not start"; exit 1; }
fi

# Trust auth on loopback is how the machine is set up; make sure the role
# the tests use exists and the test database is there.
if ! psql "postgres://root@127.0.0.1:5432/test?sslmode=disable" -qtAc 'select 1' >/dev/null 2>&1; then
	log "creating PostgreSQL role root and database test"
	su postgres -c "psql -qc \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='root') THEN CREATE ROLE root SUPERUSER LOGIN; END IF; END\\\$\\\$\"" || true
	su postgres -c "createdb -O root test" 2>/dev/null || true
fi
psql "postgres://root@127.0.0.1:5432/test?sslmode=disable" -qtAc 'select 1' >/dev/null

# MariaDB is used by later capabilities' tests (database dumps); start it if
# installed and down, but do not fail the run for it.
if command -v mariadbd >/dev/null 2>&1 && ! mariadb-admin -h 127.0.0.1 ping >/dev/null 2>&1; then
	log "starting MariaDB"
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
log "ready"
