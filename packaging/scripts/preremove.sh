#!/bin/sh
# preremove: stop the service when the package is removed (not on an
# upgrade: postinstall restarts it then).
set -e
case "${1:-}" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now myt.service >/dev/null 2>&1 || true
	fi
	# A later install finds the configuration kept and is told the old
	# version, as on an upgrade: this says it must start the service again.
	if [ -d /var/lib/myt ]; then
		: >/var/lib/myt/.package-removed
	fi
	;;
esac
exit 0
