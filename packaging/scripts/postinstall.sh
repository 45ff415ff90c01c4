#!/bin/sh
# postinstall: make the myt system user, its data directory, and start
# the service on a first install; restart it on an upgrade. Asks nothing.
set -e
if ! getent group myt >/dev/null; then
	groupadd --system myt
fi
if ! getent passwd myt >/dev/null; then
	useradd --system --gid myt --home-dir /var/lib/myt --no-create-home \
		--shell /usr/sbin/nologin --comment "MyT control plane" myt
fi
install -d -m 0700 -o myt -g myt /var/lib/myt
chown root:myt /etc/myt/myt.env
chmod 0640 /etc/myt/myt.env
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	# deb passes "configure" (+ the old version on an upgrade), rpm "1" on
	# install and "2" on an upgrade.
	# After a remove (not purge) dpkg passes the kept configuration's
	# version too; preremove left .package-removed to tell the two apart,
	# so an upgrade keeps an admin's "systemctl disable" and a new install
	# starts the service.
	if [ -e /var/lib/myt/.package-removed ]; then
		rm -f /var/lib/myt/.package-removed
		systemctl enable --now myt.service >/dev/null || true
	elif [ -n "${2:-}" ] || [ "${1:-}" = 2 ]; then
		systemctl try-restart myt.service >/dev/null || true
	else
		systemctl enable --now myt.service >/dev/null || true
	fi
fi
exit 0
