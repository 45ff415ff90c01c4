#!/bin/bash
# docker-entrypoint.sh: on first start, initdb $PGDATA from the upstream
# variables (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB), require
# scram-sha-256 passwords for TCP clients, run
# /docker-entrypoint-initdb.d/*.sql and *.sh; then run postgres in the
# foreground as the postgres user. POSTGRES_PASSWORD may instead be given
# as POSTGRES_PASSWORD_FILE (Docker secrets), as upstream allows.
set -euo pipefail
if [ -z "${POSTGRES_PASSWORD:-}" ] && [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE"); fi
first=${1:-}; if [ "${first:0:1}" = - ]; then set -- postgres "$@"; fi
user=${POSTGRES_USER:-postgres} db=${POSTGRES_DB:-${POSTGRES_USER:-postgres}}
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"; chmod 700 "$PGDATA"
	pwfile=$(mktemp); chown postgres "$pwfile"
	printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}" > "$pwfile"
	as_pg initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
	rm -f "$pwfile"
	printf "listen_addresses = '*'\njit = off\n" >> "$PGDATA/postgresql.conf"
	printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
	as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
	if [ "$db" != postgres ]; then as_pg psql -v ON_ERROR_STOP=1 -q -U "$user" -d postgres -c "CREATE DATABASE \"$db\"" ; fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sql) as_pg psql -v ON_ERROR_STOP=1 -q -U "$user" -d "$db" -f "$f" ;;
		*.sh) . "$f" ;;
		esac
	done
	as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
if [ "${1:-}" = postgres ]; then shift; exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" "$@"; fi
exec "$@"
