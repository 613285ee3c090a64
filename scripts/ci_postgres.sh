#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the registry tests.
#
# Installs Debian's postgresql if needed, creates a cluster in a scratch folder owned by the
# postgres user (not the system cluster), starts it on 127.0.0.1 only, creates the test
# database and prints ONE line on stdout:
#     export BASTION_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/DB
# so CI runs:   eval "$(scripts/ci_postgres.sh)"
# Everything else goes to stderr. Idempotent: a second call reuses the running server.
# Durability is switched off (fsync, synchronous_commit): the data are thrown away anyway.
# Stop it with: scripts/ci_postgres.sh stop
set -euo pipefail

PORT="${BASTION_PG_PORT:-55432}"
DIR="${BASTION_PG_DIR:-/tmp/bastion-ci-postgres}"
DB="${BASTION_PG_DB:-bastion_test}"
DATA="$DIR/data"

log() { echo "ci_postgres: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root (or sudo) for: $*"; exit 1
    fi
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
    log "installing Debian's postgresql"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
BIN="$(pg_bin)"

# Run a server binary as the postgres user when we are root (initdb refuses root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

if [ "${1:-}" = "stop" ]; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
    exit 0
fi

if [ ! -s "$DATA/PG_VERSION" ]; then
    log "initialising a cluster in $DATA"
    rm -rf "$DATA"
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
fi

if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PORT"
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 start -o \
        "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >&2 \
        || { cat "$DIR/server.log" >&2; exit 1; }
fi

psql_pg() { as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_pg -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    log "creating database $DB"
    psql_pg -d postgres -c "CREATE DATABASE \"$DB\"" >&2
fi

echo "export BASTION_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
