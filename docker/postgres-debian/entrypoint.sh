#!/bin/sh
# The official postgres image's start-up contract, in short: on the first start an empty
# $PGDATA gets a cluster whose superuser is POSTGRES_USER with POSTGRES_PASSWORD (required),
# and the database POSTGRES_DB; then `postgres ARGS` runs as the postgres user, listening on
# every interface with password (scram-sha-256) logins from the network.
set -eu

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    chown postgres "$pwfile"
    runuser -u postgres -- initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
        runuser -u postgres -- createdb -U "$user" "$db"
        runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop
    fi
fi

exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*' "$@"
