package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/sqlite"
)

// checkMonitoredOverSSH: the deploy installed the platform's monitor key
// on the host, restricted (forwarding to the loopback ports, df), and
// myt serve's poller, logged in with it, recorded the worker, the broker,
// the database and Grafana up, and the data disk's use.
func checkMonitoredOverSSH(t *testing.T, srv *server, h *testenv.SystemdHost, p *myt.Platform) {
	t.Helper()
	line := h.Run(t, "grep myt-monitor:platform- /root/.ssh/authorized_keys")
	for _, want := range []string{"restrict,port-forwarding,", `permitopen="127.0.0.1:18080"`, `permitopen="127.0.0.1:15672"`, `command="df -P /srv/myt/data"`} {
		if !strings.Contains(line, want) {
			t.Errorf("monitor key line on the host lacks %s: %q", want, line)
		}
	}
	db, _ := serverStore(t, srv)
	mon := sqlite.NewMonitorStore(db)
	ctx := context.Background()
	last := func(metric string) (float64, bool) {
		si, ok, err := mon.Lookup(ctx, p.ID, metric)
		if err != nil || !ok {
			return 0, false
		}
		r, ok, err := mon.Last(ctx, si.ID, monitor.TierRaw, time.Now().Add(time.Hour))
		return r.Value, ok && err == nil
	}
	deadline := time.Now().Add(2 * time.Minute) // one poll interval (30 s) and then some
	for {
		var missing []string
		for _, c := range []string{monitor.ComponentWorker, monitor.ComponentBroker, monitor.ComponentDatabase, monitor.ComponentGrafana} {
			if v, ok := last(monitor.UpPrefix + c); !ok || v != 1 {
				missing = append(missing, c)
			}
		}
		if v, ok := last(monitor.MetricDiskUsed); !ok || v <= 0 || v >= 1 {
			missing = append(missing, "disk use")
		}
		if len(missing) == 0 {
			v, _ := last(monitor.MetricDiskUsed)
			t.Logf("monitored over SSH: worker, broker, database and Grafana up, disk %.1f%% used (waited %s)", 100*v, time.Until(deadline.Add(-2*time.Minute)).Abs().Round(time.Second))
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the monitor did not record %v up through the SSH tunnel; server log:\n%s", missing, srv.log.String())
			return
		}
		time.Sleep(2 * time.Second)
	}
}
