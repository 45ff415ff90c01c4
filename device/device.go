// Package device manages a running platform's per-device broker
// credentials (myt.DeviceService). MyT is their source of truth: the
// devices table (sqlite.DeviceStore) keeps each one with its password's
// RabbitMQ hash, and the broker is made to match it through RabbitMQ's
// management API, as the platform's administrator (myt-admin), on the
// platform host's loopback: directly for a local platform, over the
// monitor key's SSH tunnel for ssh and cloud hosts (monitor.Targets).
//
// A device is a broker user of its own name, tagged Tag, with the vhost
// permissions MQTT needs (Management.Permissions) and a topic permission
// on the MQTT exchange for its own routing keys only
// (Management.TopicPattern). Revoking deletes the user and closes its
// connections. After every successful deploy and update the job runner
// calls Reconcile, which re-applies every device, so that a broker
// recreated from scratch keeps them.
package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
	"github.com/myt-iot/myt/worker"
)

// DialFunc opens a connection to an address on the platform's host.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer reaches a platform host's loopback ports (monitor.Targets).
type Dialer interface {
	// DialPlatform returns a dial function for p's host and a function
	// that releases what it holds (an SSH connection).
	DialPlatform(ctx context.Context, p *myt.Platform) (DialFunc, func(), error)
}

// SecretStore reads a platform's sealed secrets (sqlite.PlatformSecrets).
type SecretStore interface {
	Get(ctx context.Context, platformID int64, name string) ([]byte, error)
}

// Store keeps devices (sqlite.DeviceStore).
type Store interface {
	Devices(ctx context.Context, platformID int64) ([]*myt.Device, error)
	AddDevices(ctx context.Context, platformID int64, ds []*myt.Device) error
	RevokeDevice(ctx context.Context, platformID int64, name string) (*myt.Device, error)
	DeleteDevice(ctx context.Context, id int64) error
	SetActivity(ctx context.Context, id int64, connected bool, messages int64, at time.Time) error
}

// Service implements myt.DeviceService.
type Service struct {
	Platforms myt.PlatformService
	Store     Store
	Secrets   SecretStore
	Dialer    Dialer
	Log       *slog.Logger
	// Timeout bounds one call to a broker (default 2 minutes: an import
	// of thousands of devices makes three requests each).
	Timeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

var _ myt.DeviceService = (*Service)(nil)

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// broker opens the management API of running platform p and calls fn
// with it.
func (s *Service) broker(ctx context.Context, p *myt.Platform, fn func(ctx context.Context, m *Management) error) error {
	if s.Dialer == nil {
		return myt.Errorf(myt.EINVALID, "This server cannot reach platforms' brokers.")
	}
	pw, err := s.Secrets.Get(ctx, p.ID, render.SecretRabbitMQAdmin)
	if err != nil {
		if myt.ErrorCode(err) == myt.ENOTFOUND {
			return myt.Errorf(myt.EINVALID, "Platform %s has no broker password yet: deploy it.", p.Name)
		}
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial, release, err := s.Dialer.DialPlatform(ctx, p)
	if err != nil {
		return fmt.Errorf("reach platform %s: %w", p.Name, err)
	}
	defer release()
	tr := &http.Transport{Proxy: nil, DialContext: dial, MaxIdleConnsPerHost: 2}
	defer tr.CloseIdleConnections()
	c := worker.DefaultConfig()
	m := &Management{
		Client: &http.Client{Transport: tr},
		URL:    "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(render.ManagementPort)),
		User:   "myt-admin", Password: strings.TrimSpace(string(pw)),
		VHost: render.VHost, Exchange: c.AMQP.Exchange, Prefix: render.TopicPrefix,
	}
	if err := fn(ctx, m); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("the broker of %s did not answer within %s: %w", p.Name, timeout, err)
		}
		return err
	}
	return nil
}

// FindDevices implements myt.DeviceService. With the platform running it
// asks the broker which devices are connected and how many messages
// their connections published, and records that (LastSeen); a broker
// that does not answer leaves the last values, and is logged.
func (s *Service) FindDevices(ctx context.Context, platformID int64) ([]*myt.Device, error) {
	p, err := s.Platforms.FindPlatformByID(ctx, platformID)
	if err != nil {
		return nil, err
	}
	ds, err := s.Store.Devices(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if p.Status != myt.StatusRunning || len(ds) == 0 {
		return ds, nil
	}
	var act map[string]int64
	err = s.broker(ctx, p, func(ctx context.Context, m *Management) error {
		act, err = m.Activity(ctx)
		return err
	})
	if err != nil {
		s.log().Warn("device activity", "platform", p.ID, "err", err)
		return ds, nil
	}
	now := s.now().UTC()
	for _, d := range ds {
		if d.Revoked != nil {
			continue
		}
		n, ok := act[d.Name]
		if !ok && !d.Connected {
			continue
		}
		if err := s.Store.SetActivity(ctx, d.ID, ok, n, now); err != nil {
			return nil, err
		}
		d.Connected = ok
		if ok {
			d.LastSeen, d.Messages = &now, n
		}
	}
	return ds, nil
}

// FindDevice implements myt.DeviceService.
func (s *Service) FindDevice(ctx context.Context, platformID int64, name string) (*myt.Device, error) {
	ds, err := s.FindDevices(ctx, platformID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Name == name && d.Revoked == nil {
			return d, nil
		}
	}
	return nil, myt.Errorf(myt.ENOTFOUND, "The platform has no device named %s.", name)
}

// AddDevice implements myt.DeviceService.
func (s *Service) AddDevice(ctx context.Context, platformID int64, in myt.DeviceNew) (*myt.DeviceSecret, error) {
	in.Name, in.Description = strings.TrimSpace(in.Name), strings.TrimSpace(in.Description)
	err := myt.ValidateDeviceName(in.Name)
	if e := validateDescription(in.Description); e != nil {
		err = myt.WithMoreFields(err, e)
		if err == nil {
			err = e
		}
	}
	if err != nil {
		return nil, err
	}
	out, err := s.add(ctx, platformID, []myt.DeviceNew{in})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ImportDevices implements myt.DeviceService.
func (s *Service) ImportDevices(ctx context.Context, platformID int64, csv []byte) ([]*myt.DeviceSecret, error) {
	p, err := s.Platforms.FindPlatformByID(ctx, platformID)
	if err != nil {
		return nil, err
	}
	// Names active devices already have are lines in error too.
	ds, err := s.Store.Devices(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, d := range ds {
		if d.Revoked == nil {
			taken[d.Name] = true
		}
	}
	ins, _, err := ParseCSV(csv, func(name string) bool { return taken[name] })
	if err != nil {
		return nil, err
	}
	return s.add(ctx, p.ID, ins)
}

// add stores the devices with new passwords and, when the platform
// runs, creates their broker users; when the broker refuses or cannot
// be reached, nothing is kept.
func (s *Service) add(ctx context.Context, platformID int64, ins []myt.DeviceNew) ([]*myt.DeviceSecret, error) {
	p, err := s.Platforms.FindPlatformByID(ctx, platformID)
	if err != nil {
		return nil, err
	}
	switch p.Status {
	case myt.StatusDestroying, myt.StatusDestroyed:
		return nil, myt.Errorf(myt.EINVALID, "Platform %s is %s: devices are added to a platform that is designed, deploying or running.", p.Name, p.Status)
	}
	out := make([]*myt.DeviceSecret, len(ins))
	ds := make([]*myt.Device, len(ins))
	for i, in := range ins {
		pw := newPassword()
		ds[i] = &myt.Device{Name: in.Name, Description: in.Description, PasswordHash: Hash(pw)}
		out[i] = &myt.DeviceSecret{Device: ds[i], Password: pw}
	}
	if err := s.Store.AddDevices(ctx, p.ID, ds); err != nil {
		return nil, err
	}
	if p.Status != myt.StatusRunning {
		// The deploy that makes it run applies them (Reconcile).
		return out, nil
	}
	err = s.broker(ctx, p, func(ctx context.Context, m *Management) error {
		for _, d := range ds {
			if err := m.ApplyDevice(ctx, d.Name, d.PasswordHash); err != nil {
				return fmt.Errorf("device %s: %w", d.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		s.log().Error("add devices", "platform", p.ID, "err", err)
		// Take them back, from MyT and from the broker (best effort: a
		// user left behind has no known password and the next deploy
		// deletes it, as it is tagged and not MyT's).
		bg := context.WithoutCancel(ctx)
		for _, d := range ds {
			if e := s.Store.DeleteDevice(bg, d.ID); e != nil {
				s.log().Error("take back device", "platform", p.ID, "device", d.Name, "err", e)
			}
		}
		_ = s.broker(bg, p, func(ctx context.Context, m *Management) error {
			for _, d := range ds {
				m.RemoveDevice(ctx, d.Name)
			}
			return nil
		})
		return nil, myt.Errorf(myt.EINTERNAL, "The broker of %s could not be given the device (%s); nothing was added. Check the platform's health and try again.", p.Name, brief(err))
	}
	return out, nil
}

// RevokeDevice implements myt.DeviceService. The device is revoked in
// MyT first; when the broker cannot be reached the error says so, and
// the next deploy or update deletes its user.
func (s *Service) RevokeDevice(ctx context.Context, platformID int64, name string) (*myt.Device, error) {
	p, err := s.Platforms.FindPlatformByID(ctx, platformID)
	if err != nil {
		return nil, err
	}
	d, err := s.Store.RevokeDevice(ctx, p.ID, name)
	if err != nil {
		return nil, err
	}
	if p.Status != myt.StatusRunning {
		return d, nil
	}
	err = s.broker(ctx, p, func(ctx context.Context, m *Management) error { return m.RemoveDevice(ctx, name) })
	if err != nil {
		s.log().Error("revoke device", "platform", p.ID, "device", name, "err", err)
		return nil, myt.Errorf(myt.EINTERNAL, "Device %s is revoked in MyT, but the broker of %s could not be reached to delete its user (%s): it may still connect until the broker is reached. Revoke again, or update the platform, which applies the device list.", name, p.Name, brief(err))
	}
	return d, nil
}

// Reconcile makes running platform p's broker match MyT's devices:
// every active device's user, permissions and password hash are put
// again, and every other user tagged Tag (a revoked device's, one left
// behind) is deleted with its connections. It returns how many devices
// it applied and deleted. It acts for the server (the job runner after a
// deploy or update), without a principal.
func (s *Service) Reconcile(ctx context.Context, p *myt.Platform) (applied, deleted int, err error) {
	ds, err := s.Store.Devices(ctx, p.ID)
	if err != nil {
		return 0, 0, err
	}
	active := map[string]bool{}
	for _, d := range ds {
		if d.Revoked == nil {
			active[d.Name] = true
		}
	}
	err = s.broker(ctx, p, func(ctx context.Context, m *Management) error {
		users, err := m.DeviceUsers(ctx)
		if err != nil {
			return err
		}
		if len(active) == 0 && len(users) == 0 {
			return nil
		}
		for _, d := range ds {
			if d.Revoked == nil {
				if err := m.ApplyDevice(ctx, d.Name, d.PasswordHash); err != nil {
					return fmt.Errorf("device %s: %w", d.Name, err)
				}
				applied++
			}
		}
		for _, u := range users {
			if !active[u] {
				if err := m.RemoveDevice(ctx, u); err != nil {
					return fmt.Errorf("device %s: %w", u, err)
				}
				deleted++
			}
		}
		return nil
	})
	return applied, deleted, err
}

// brief is err's first line without the management API's answer body.
func brief(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return fmt.Sprintf("HTTP %d from its management API", ae.Status)
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
