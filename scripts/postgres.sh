#!/usr/bin/env bash
# Start the machine's PostgreSQL cluster (Debian's postgresql package) and make sure the
# test role exists; print the URL the tests connect to as that role. Each test creates and
# drops a database of its own.
set -euo pipefail
# Only the URL goes to stdout: whatever the cluster tools say (e.g. "Removed stale pid
# file." after an unclean shutdown) goes to stderr.
exec 3>&1 1>&2
role=provenance_test
cluster=$(pg_lsclusters --no-header | awk 'NR == 1 {print $1, $2, $3, $4}')
if [ -z "$cluster" ]; then
    pg_createcluster 15 main >/dev/null 2>&1 || pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main >/dev/null
    cluster=$(pg_lsclusters --no-header | awk 'NR == 1 {print $1, $2, $3, $4}')
fi
read -r version name port status <<<"$cluster"
if [ "$status" != "online" ]; then
    pg_ctlcluster "$version" "$name" start 3>&-
fi
as_postgres() { su postgres -c "$1"; }
if ! as_postgres "psql -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname = '$role'\"" | grep -q 1; then
    as_postgres "psql -p $port -qc \"CREATE ROLE $role LOGIN CREATEDB PASSWORD '$role'\""
fi
# Dropping a test database WITH (FORCE) may have to end an autovacuum worker on it.
as_postgres "psql -p $port -qc \"SET client_min_messages TO warning; GRANT pg_signal_backend TO $role\"" >/dev/null
echo "postgresql://$role:$role@127.0.0.1:$port/postgres" >&3
