#!/usr/bin/env bash
# Installs and starts what `make test` needs, idempotently: PostgreSQL (the
# store's second engine, database dumps), MariaDB (database dumps) and
# versitygw (the S3 server the S3 backend is tested against), iproute2 and
# nftables (firewall tests in network namespaces), Chromium (the web
# console's browser tests and the report's PDF). Safe to run as
# often as you like; on a machine that already has them running it does
# nothing but check.
set -euo pipefail

log() { printf 'test-deps: %s\n' "$*" >&2; }

need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
command -v mariadbd >/dev/null 2>&1 || need_apt+=(mariadb-server)
command -v mariadb-dump >/dev/null 2>&1 || need_apt+=(mariadb-client)
# cgo: the race detector and the libzstd encoder (internal/repo/pack).
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
# Firewall tests: network namespaces (ip netns) and the nft command that
# checks independently what internal/firewall loaded.
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
# Supervision: Debian's node_exporter, the reference the host metrics are
# compared with (internal/monitor/host), started by that test on loopback.
command -v prometheus-node-exporter >/dev/null 2>&1 || need_apt+=(prometheus-node-exporter)
# The web console's end-to-end tests (internal/web/console) and the
# report's PDF (internal/report): Debian's Chromium, driven headless.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium chromium-driver)
# The report's PDF test reads the printed text with pdftotext.
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
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

# MariaDB: the database-dump tests back up and restore real databases.
my_up() { mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; }
if ! my_up; then
	log "starting MariaDB"
	mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
	for _ in $(seq 1 30); do my_up && break; sleep 1; done
	my_up || { log "MariaDB did not start"; exit 1; }
fi
if ! mariadb -h 127.0.0.1 -u root -e 'select 1' test >/dev/null 2>&1; then
	log "creating MariaDB database test (root, no password, on 127.0.0.1)"
	mariadb -u root -e "CREATE DATABASE IF NOT EXISTS test" || true
fi

# versitygw, the S3 server (posix backend on a temporary directory) that the
# S3 backend's tests start on 127.0.0.1.
"$(dirname "$0")/versitygw.sh" install
log "ready"
