#!/bin/sh
# docker-entrypoint.sh: configure RabbitMQ the way the upstream image does
# (RABBITMQ_DEFAULT_USER/PASS, conf.d), then run the broker in the foreground
# as the rabbitmq user.
#
# Extra settings: mount *.conf files into /etc/rabbitmq/conf.d/ (or a full
# /etc/rabbitmq/rabbitmq.conf), or set RABBITMQ_MQTT_PREFETCH to raise
# mqtt.prefetch without a file.
set -eu
umask 027
conf=/etc/rabbitmq/conf.d/10-defaults.conf
{
	echo "loopback_users.guest = false"
	if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = ${RABBITMQ_DEFAULT_USER}"; fi
	if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = ${RABBITMQ_DEFAULT_PASS}"; fi
	if [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ]; then echo "default_vhost = ${RABBITMQ_DEFAULT_VHOST}"; fi
	if [ -n "${RABBITMQ_MQTT_PREFETCH:-}" ]; then echo "mqtt.prefetch = ${RABBITMQ_MQTT_PREFETCH}"; fi
} > "$conf" 2>/dev/null || echo "docker-entrypoint: /etc/rabbitmq/conf.d is read-only; using mounted config only" >&2
if [ "${1:-}" = rabbitmq-server ]; then
	export HOME=/var/lib/rabbitmq
	if [ "$(id -u)" = 0 ]; then
		chown -R rabbitmq:rabbitmq /var/lib/rabbitmq "$conf" 2>/dev/null || true
		exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
	fi
	exec /usr/lib/rabbitmq/bin/rabbitmq-server
fi
exec "$@"
