#!/bin/bash
# docker-entrypoint.sh: on first start, create INFLUXDB_DB and the users
# named by INFLUXDB_ADMIN_USER/_PASSWORD and INFLUXDB_USER/_PASSWORD (as the
# upstream influxdb:1.8 image does), with a temporary loopback-only server;
# then run influxd in the foreground as the influxdb user.
set -euo pipefail
urlenc() {
	local s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in [a-zA-Z0-9.~_-]) out+=$c ;; *) printf -v c '%%%02X' "'$c"; out+=$c ;; esac
	done
	printf '%s' "$out"
}
# query STATEMENT: POST it to the temporary server (no curl in the image)
# and read the whole answer. influxd flushes "200 OK" before it runs the
# statement, so the status line alone proves nothing: only the end of the
# response (HTTP/1.0: the server closes) says the statement is done, and
# an error is reported in the body.
query() {
	local body="q=$(urlenc "$1")" status answer
	exec 3<>/dev/tcp/127.0.0.1/8086
	printf 'POST /query HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body" >&3
	read -r _ status _ <&3
	answer=$(cat <&3)
	exec 3<&-
	[ "$status" = 200 ] || { echo "docker-entrypoint: influx query failed: HTTP $status" >&2; return 1; }
	case $answer in *'"error"'*) echo "docker-entrypoint: influx query failed: ${answer##*$'\r\n\r\n'}" >&2; return 1 ;; esac
}
iq() { printf '"%s"' "${1//\"/\\\"}"; }
sq() { printf "'%s'" "${1//\'/\\\'}"; }

# The upstream 2.x image's variables: serve the 2.x API subset instead.
# As upstream, the executable *.sh in /docker-entrypoint-initdb.d run once,
# as root, at setup, with DOCKER_INFLUXDB_INIT_BUCKET_ID set (here before
# the server starts: the stand-in's `influx auth create` needs none).
if [ "${1:-}" = influxd ] && { [ -n "${DOCKER_INFLUXDB_INIT_MODE:-}" ] || [ -n "${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN:-}" ] || [ -n "${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE:-}" ]; }; then
	if [ "${DOCKER_INFLUXDB_INIT_MODE:-}" = setup ] && [ ! -e /var/lib/influxdb2/.myt-initdb-done ]; then
		mkdir -p /var/lib/influxdb2
		export DOCKER_INFLUXDB_INIT_BUCKET_ID=0000000000000001
		for f in /docker-entrypoint-initdb.d/*.sh; do
			if [ -f "$f" ] && [ -x "$f" ]; then "$f"; fi
		done
		touch /var/lib/influxdb2/.myt-initdb-done
	fi
	exec /usr/local/bin/myt-influx2
fi

marker=/var/lib/influxdb/.initialised
if [ "${1:-}" = influxd ] && [ ! -e "$marker" ]; then
	chown -R influxdb:influxdb /var/lib/influxdb
	INFLUXDB_HTTP_AUTH_ENABLED=false INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:8086 \
		setpriv --reuid=influxdb --regid=influxdb --init-groups influxd >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/8086) 2>/dev/null && break; sleep 0.2; done
	if [ -n "${INFLUXDB_ADMIN_USER:-}" ]; then query "CREATE USER $(iq "$INFLUXDB_ADMIN_USER") WITH PASSWORD $(sq "${INFLUXDB_ADMIN_PASSWORD:-}") WITH ALL PRIVILEGES"; fi
	if [ -n "${INFLUXDB_DB:-}" ]; then query "CREATE DATABASE $(iq "$INFLUXDB_DB")"; fi
	if [ -n "${INFLUXDB_USER:-}" ]; then
		query "CREATE USER $(iq "$INFLUXDB_USER") WITH PASSWORD $(sq "${INFLUXDB_USER_PASSWORD:-}")"
		if [ -n "${INFLUXDB_DB:-}" ]; then query "GRANT ALL ON $(iq "$INFLUXDB_DB") TO $(iq "$INFLUXDB_USER")"; fi
	fi
	kill "$pid"; wait "$pid" || true
	touch "$marker"
fi
if [ "${1:-}" = influxd ]; then shift; exec setpriv --reuid=influxdb --regid=influxdb --init-groups influxd "$@"; fi
exec "$@"
