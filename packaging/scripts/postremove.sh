#!/bin/sh
# postremove: on purge (deb only: rpm has none), remove what the package
# made and nothing else: the data directory /var/lib/myt (accounts, sealed
# credentials, platform state) and the myt user and group. Asks nothing:
# purge is the explicit "remove my data" of dpkg; remove keeps it.
set -e
if [ "${1:-}" = purge ]; then
	rm -rf /var/lib/myt
	rmdir /etc/myt 2>/dev/null || true
	if getent passwd myt >/dev/null; then userdel myt >/dev/null 2>&1 || true; fi
	if getent group myt >/dev/null; then groupdel myt >/dev/null 2>&1 || true; fi
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
