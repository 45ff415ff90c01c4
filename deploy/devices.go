package deploy

import (
	"context"
	"time"

	"github.com/myt-iot/myt"
)

// DeviceReconciler makes a running platform's broker match MyT's device
// list (device.Service): every active device's user and permissions put
// again, every other device user deleted. It acts for the server.
type DeviceReconciler interface {
	Reconcile(ctx context.Context, p *myt.Platform) (applied, deleted int, err error)
}

// reconcileDevices re-applies the platform's devices after a successful
// deploy or update, which may have made a new broker (a new host, a lost
// data volume) that knows only the users of definitions.json. A failure
// is said in the job's log but does not fail the job: the platform runs,
// and the devices are applied again by the next deploy or update.
func (w *work) reconcileDevices(ctx context.Context) {
	p := *w.p
	p.Design, p.Status = w.job.Design, myt.StatusRunning
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	applied, deleted, err := w.r.cfg.Devices.Reconcile(ctx, &p)
	switch {
	case err != nil:
		w.log.Printf("WARNING: devices not re-applied to the broker (%v): deploy or update again to retry", err)
		w.r.log.Warn("reconcile devices", "platform", p.ID, "err", err)
	case applied+deleted > 0:
		w.log.Printf("devices: %d re-applied to the broker, %d revoked users deleted", applied, deleted)
	}
}
