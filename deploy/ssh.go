package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshHost is how the runner itself reaches a platform's host: to wait
// for it, check the platform's health, read logs and remove it.
type sshHost struct {
	Host string
	Port int
	User string
	// Key is the private key (PEM/OpenSSH). Secret.
	Key []byte
	// KnownHosts is the file of trusted host keys. When it is empty the
	// first key seen is trusted and written to it (trust on first use,
	// as ssh's StrictHostKeyChecking=accept-new); after that, a changed
	// key is refused.
	KnownHosts string
}

func (h sshHost) addr() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// errHostKeyChanged is a host key that differs from the recorded one.
var errHostKeyChanged = errors.New("host key changed")

func (h sshHost) config() (*ssh.ClientConfig, error) {
	signer, err := ssh.ParsePrivateKey(h.Key)
	if err != nil {
		return nil, fmt.Errorf("ssh private key: %w", err)
	}
	return &ssh.ClientConfig{
		User:            h.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: h.hostKeyCallback,
		Timeout:         15 * time.Second,
	}, nil
}

func (h sshHost) hostKeyCallback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	b, err := os.ReadFile(h.KnownHosts)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(bytes.TrimSpace(b)) > 0 {
		check, err := knownhosts.New(h.KnownHosts)
		if err != nil {
			return err
		}
		err = check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) && len(ke.Want) > 0 {
			return fmt.Errorf("%w: %s no longer presents the key MyT recorded at its first contact (a new machine at that address, or someone in between)", errHostKeyChanged, h.addr())
		}
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(h.addr())}, key)
	if err := os.MkdirAll(filepath.Dir(h.KnownHosts), 0o700); err != nil {
		return err
	}
	return os.WriteFile(h.KnownHosts, []byte(line+"\n"), 0o600)
}

// dial connects once.
func (h sshHost) dial(ctx context.Context) (*ssh.Client, error) {
	cfg, err := h.config()
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", h.addr())
	if err != nil {
		return nil, err
	}
	// The handshake has no context: bound it with a deadline.
	_ = conn.SetDeadline(time.Now().Add(cfg.Timeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, h.addr(), cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// wait dials until the host answers or timeout passes, calling progress
// after each failed try. A changed host key or a refused key is final.
func (h sshHost) wait(ctx context.Context, timeout time.Duration, progress func(error)) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := time.Second
	for {
		c, err := h.dial(ctx)
		if err == nil {
			return c, nil
		}
		if errors.Is(err, errHostKeyChanged) || strings.Contains(err.Error(), "unable to authenticate") {
			return nil, err
		}
		if progress != nil {
			progress(err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s did not answer over SSH within %s: %w", h.addr(), timeout, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// sudo prefixes a command with sudo when the user is not root.
func (h sshHost) sudo(cmd string) string {
	if h.User == "root" {
		return cmd
	}
	return "sudo -n " + cmd
}

// runSSH runs cmd on c and returns its stdout; a non-zero exit is an error
// carrying stderr's last line.
func runSSH(ctx context.Context, c *ssh.Client, cmd string) (string, error) {
	return runSSHInput(ctx, c, cmd, nil)
}

// runSSHInput is runSSH with stdin (none when nil).
func runSSHInput(ctx context.Context, c *ssh.Client, cmd string, stdin []byte) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		return out.String(), ctx.Err()
	}
	if err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, lastLine(errb.String()))
	}
	return out.String(), nil
}
