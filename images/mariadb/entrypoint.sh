#!/bin/bash
# docker-entrypoint.sh: on first start, initialise /var/lib/mysql from the
# same variables as the upstream images (MARIADB_* or MYSQL_*:
# ROOT_PASSWORD, DATABASE, USER, PASSWORD) and run
# /docker-entrypoint-initdb.d/*.sql and *.sh; then run mariadbd in the
# foreground. Each variable may instead be given as NAME_FILE (a path whose
# content is the value), as upstream allows for Docker secrets. Arguments
# that start with "-" are passed to mariadbd.
set -euo pipefail
env_or() {
	local n
	for n in "MARIADB_$1" "MYSQL_$1"; do
		if [ -n "${!n:-}" ]; then printf '%s' "${!n}"; return; fi
		n="${n}_FILE"
		if [ -n "${!n:-}" ]; then cat "${!n}"; return; fi
	done
}
first=${1:-}; if [ "${first:0:1}" = - ]; then set -- mariadbd "$@"; fi
root_pw=$(env_or ROOT_PASSWORD) db=$(env_or DATABASE) user=$(env_or USER) pw=$(env_or PASSWORD)
sqlq() { printf "'%s'" "${1//\'/\'\'}"; }

if [ "${1:-}" = mariadbd ] && [ ! -d /var/lib/mysql/mysql ]; then
	chown mysql:mysql /var/lib/mysql /run/mysqld
	mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db --auth-root-authentication-method=normal >/dev/null
	mariadbd --user=mysql --skip-networking --socket=/run/mysqld/init.sock &
	pid=$!
	for _ in $(seq 1 60); do mariadb --socket=/run/mysqld/init.sock -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
	{
		echo "DELETE FROM mysql.user WHERE user='';"
		if [ -n "$root_pw" ]; then
			echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY $(sqlq "$root_pw");"
			echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
			echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sqlq "$root_pw");"
		fi
		if [ -n "$db" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"; fi
		if [ -n "$user" ]; then
			echo "CREATE USER IF NOT EXISTS $(sqlq "$user")@'%' IDENTIFIED BY $(sqlq "$pw");"
			if [ -n "$db" ]; then echo "GRANT ALL ON \`$db\`.* TO $(sqlq "$user")@'%';"; fi
		fi
		echo "FLUSH PRIVILEGES;"
	} | mariadb --socket=/run/mysqld/init.sock -uroot
	# As upstream, a sourced *.sh runs its SQL through docker_process_sql
	# (the client as root on the init socket, in MYSQL_DATABASE).
	docker_process_sql() { MYSQL_PWD="$root_pw" mariadb --socket=/run/mysqld/init.sock -uroot ${db:+--database="$db"} "$@"; }
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sql) MYSQL_PWD="$root_pw" mariadb --socket=/run/mysqld/init.sock -uroot ${db:+"$db"} < "$f" ;;
		*.sh) . "$f" ;;
		esac
	done
	kill "$pid"; wait "$pid" || true
fi
if [ "${1:-}" = mariadbd ]; then shift; exec mariadbd --user=mysql "$@"; fi
exec "$@"
