package deploy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/render"
)

// The monitor key: the background poller cannot open the user's SSH
// credential (sealed with the user's key), so each deploy of a platform
// on an SSH host ensures a key of the platform's own, made once by MyT and
// kept in its secrets (sealed with the server key), and installs it in
// the SSH user's authorized_keys restricted to forwarding to the
// platform's loopback ports and running df (monitor.KeyOptions). A
// destroy removes it. docs/monitor.md.

// authorizedKeys is the file sshd reads by default, relative to the SSH
// user's home.
const authorizedKeys = ".ssh/authorized_keys"

// monitorKeyComment ends MyT's own line in authorized_keys: the line is
// found by it, replaced by each deploy and removed by destroy; every
// other line is left as it is.
func monitorKeyComment(platformID int64) string {
	return "myt-monitor:platform-" + strconv.FormatInt(platformID, 10)
}

// installMonitorKey ensures the platform's monitor key and its line in
// the host's authorized_keys (over c, logged in with the user's
// credential), and records where the monitor logs in.
func (w *work) installMonitorKey(c *ssh.Client, h sshHost) error {
	signer, err := w.monitorKey()
	if err != nil {
		return err
	}
	line, err := monitor.AuthorizedKey(signer.PublicKey(), w.d.Spec.Processing.Workers, render.HostDataDir, monitorKeyComment(w.p.ID))
	if err != nil {
		return err
	}
	changed, err := setAuthorizedKey(w.ctx, c, authorizedKeys, monitorKeyComment(w.p.ID), line)
	if err != nil {
		return fmt.Errorf("install the monitor key in ~%s/%s on %s: %w", h.User, authorizedKeys, h.addr(), err)
	}
	if changed {
		w.changed = true
		w.log.Printf("Installed the monitor key in ~%s/%s: it may only forward to the platform's loopback ports and run %q.", h.User, authorizedKeys, monitor.DiskCommand(render.HostDataDir))
	}
	login, err := json.Marshal(monitor.SSHLogin{User: h.User, Host: h.Host, Port: h.Port})
	if err != nil {
		return err
	}
	return w.putSecret(monitor.SecretSSHLogin, login)
}

// removeMonitorKey removes the platform's line from authorized_keys.
func (w *work) removeMonitorKey(c *ssh.Client, h sshHost) error {
	changed, err := setAuthorizedKey(w.ctx, c, authorizedKeys, monitorKeyComment(w.p.ID), "")
	if err != nil {
		return fmt.Errorf("remove the monitor key from ~%s/%s on %s: %w", h.User, authorizedKeys, h.addr(), err)
	}
	if changed {
		w.log.Printf("Removed the monitor key from ~%s/%s.", h.User, authorizedKeys)
	}
	return nil
}

// monitorKey returns the platform's monitor key, made and kept the
// first time.
func (w *work) monitorKey() (ssh.Signer, error) {
	b, err := w.secretValue(monitor.SecretSSHKey)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		block, err := ssh.MarshalPrivateKey(priv, monitorKeyComment(w.p.ID))
		if err != nil {
			return nil, err
		}
		b = pem.EncodeToMemory(block)
		if err := w.putSecret(monitor.SecretSSHKey, b); err != nil {
			return nil, err
		}
	}
	w.log.mask(string(b))
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("the platform's monitor key: %w", err)
	}
	return signer, nil
}

// setAuthorizedKey makes the line ending in comment the only one of its
// kind in file (relative to the SSH user's home, or absolute; the host's
// $MYT_AUTHORIZED_KEYS instead when its sessions have it set, for an sshd
// whose AuthorizedKeysFile is elsewhere, as on the SSH test hosts): it
// replaces a line that ends in comment, adds line when there is none,
// and removes it when line is empty. Every other line stays as it is.
// The file is written only when it changes (a new file in the same
// directory, 0600, renamed over it), and changed says so.
func setAuthorizedKey(ctx context.Context, c *ssh.Client, file, comment, line string) (changed bool, err error) {
	if strings.ContainsAny(line, "\n\r") || comment == "" || (line != "" && !strings.HasSuffix(line, " "+comment)) {
		return false, fmt.Errorf("authorized_keys line: one line ending in %q", comment)
	}
	script := `set -eu
umask 077
f=${MYT_AUTHORIZED_KEYS:-}
[ -n "$f" ] || f=` + shellQuote(file) + `
case $f in /*) ;; *) f=$HOME/$f ;; esac
mark=` + shellQuote(" "+comment) + `
line=` + shellQuote(line) + `
mkdir -p "$(dirname "$f")"
[ -e "$f" ] || : >"$f"
tmp="$f.myt-$$"
trap 'rm -f "$tmp"' EXIT
awk -v m="$mark" '{ n = length(m); if (length($0) >= n && substr($0, length($0) - n + 1) == m) next; print }' "$f" >"$tmp"
if [ -n "$line" ]; then printf '%s\n' "$line" >>"$tmp"; fi
if cmp -s "$f" "$tmp"; then echo unchanged; exit 0; fi
if [ -L "$f" ]; then cat "$tmp" >"$f"; else mv -f "$tmp" "$f"; fi
echo changed
`
	out, err := runSSH(ctx, c, "sh -c "+shellQuote(script))
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(out) {
	case "changed":
		return true, nil
	case "unchanged":
		return false, nil
	}
	return false, fmt.Errorf("unexpected answer %q", strings.TrimSpace(out))
}
