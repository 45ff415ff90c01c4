package monitor

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/myt-iot/myt"
)

// DialPlatform returns a dial function that reaches addresses on the
// loopback of p's host, for MyT's calls to the platform's APIs besides
// polling (trying code, dead letters: package workerapi): directly for a
// local platform, else through an SSH connection of its own, logged in
// with the monitor key (which may only forward to the platform's API
// ports). release closes that connection.
func (ts *Targets) DialPlatform(ctx context.Context, p *myt.Platform) (dial func(ctx context.Context, network, addr string) (net.Conn, error), release func(), err error) {
	if p.Design == nil {
		return nil, nil, errors.New("the platform has no design")
	}
	if p.Design.Spec.Target.Provider == myt.ProviderLocal {
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext, func() {}, nil
	}
	t, err := ts.sshTarget(ctx, p.ID, max(p.Design.Spec.Processing.Workers, 1))
	if myt.ErrorCode(err) == myt.ENOTFOUND {
		return nil, nil, myt.Errorf(myt.EINVALID, "MyT has no way into this platform's host yet (it was deployed by an older MyT): update it once and MyT installs its key there.")
	}
	if err != nil {
		return nil, nil, err
	}
	t.init()
	if _, err := t.connect(ctx); err != nil {
		t.Close()
		return nil, nil, err
	}
	return t.DialContext, t.Close, nil
}
