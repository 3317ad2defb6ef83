#!/usr/bin/env bash
# A PostgreSQL server on this machine, for a search's study (hydra.sweeper.storage=postgresql://...) and for the
# test that runs a search against a real database server.
#
#   scripts/postgres_server.sh up      (make postgres)       install, initialise, start; print the study URL
#   scripts/postgres_server.sh down    (make postgres-down)  stop the server `up` started
#   scripts/postgres_server.sh url                           print the URL of the running server
#
# Needs root on Debian or Ubuntu and no systemd: postgresql comes from apt when missing, and the server runs as
# the postgres user from a data folder under $STATE, listening on a Unix socket in $STATE/run only (no TCP port,
# so it never clashes with another server). Its PID file is how `down` knows what it started.
set -euo pipefail

STATE=${TRAINLAB_POSTGRES_STATE:-/var/lib/trainlab-postgres}
DATA=$STATE/data
SOCKETS=$STATE/run
DATABASE=trainlab
URL="postgresql://postgres@/$DATABASE?host=$SOCKETS"

fail() {
    echo "Error: $*" >&2
    exit 2
}

bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

as_postgres() { runuser -u postgres -- "$@"; }

running() { [[ -s $DATA/postmaster.pid ]] && kill -0 "$(head -n1 "$DATA/postmaster.pid")" 2>/dev/null; }

install() {
    [[ -n $(bin_dir) ]] && return 0
    command -v apt-get >/dev/null || fail "PostgreSQL is not installed and apt-get is missing; install it with this system's package manager, then run make postgres again."
    echo "Installing postgresql with apt-get (about a minute)..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

up() {
    [[ $(id -u) == 0 ]] || fail "make postgres needs root (it installs PostgreSQL and runs it as the postgres user)."
    install
    local bin
    bin=$(bin_dir)
    mkdir -p "$DATA" "$SOCKETS"
    chown -R postgres:postgres "$STATE"
    if [[ ! -s $DATA/PG_VERSION ]]; then
        as_postgres "$bin/initdb" -D "$DATA" -U postgres --auth=trust >/dev/null
    fi
    if ! running; then
        as_postgres "$bin/pg_ctl" -D "$DATA" -l "$STATE/server.log" -w \
            -o "-c listen_addresses='' -c unix_socket_directories='$SOCKETS'" start >/dev/null
    fi
    if ! as_postgres psql -h "$SOCKETS" -tAc "SELECT 1 FROM pg_database WHERE datname='$DATABASE'" | grep -q 1; then
        as_postgres createdb -h "$SOCKETS" "$DATABASE"
    fi
    echo "PostgreSQL is up; a search's study: \"hydra.sweeper.storage='$URL'\" (stop it with make postgres-down)."
}

down() {
    if ! running; then
        echo "No PostgreSQL server of make postgres is running."
        return 0
    fi
    as_postgres "$(bin_dir)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    echo "PostgreSQL stopped."
}

case ${1:-} in
up) up ;;
down) down ;;
url) running && echo "$URL" || fail "no PostgreSQL server of make postgres is running; start one with make postgres." ;;
*) fail "usage: scripts/postgres_server.sh up|down|url" ;;
esac
