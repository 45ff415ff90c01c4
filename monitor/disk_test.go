//go:build unix

package monitor_test

import (
	"context"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/monitor"
)

// TestDiskUseMatchesDf: disk_used_ratio of a data directory is what df
// says of its file system (used / (used + available)), and a target with
// nothing else to poll reports no component.
func TestDiskUseMatchesDf(t *testing.T) {
	dir := t.TempDir()
	df, err := exec.LookPath("df")
	testenv.Need(t, "df", err == nil, "install coreutils")
	r := (&monitor.LocalTarget{DataDir: dir}).Poll(context.Background())
	out, err := exec.Command(df, "-P", "-k", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1]) // filesystem 1024-blocks used available capacity mount
	used, err1 := strconv.ParseFloat(f[2], 64)
	avail, err2 := strconv.ParseFloat(f[3], 64)
	if err1 != nil || err2 != nil || used+avail == 0 {
		t.Fatalf("df -P said %q", out)
	}
	want := used / (used + avail)
	if len(r.Components) != 0 || len(r.Samples) != 1 || r.Samples[0].Metric != monitor.MetricDiskUsed {
		t.Fatalf("reading %+v, want only disk_used_ratio", r)
	}
	if got := r.Samples[0].Value; math.Abs(got-want) > 0.01 {
		t.Errorf("disk_used_ratio %v, df says %v", got, want)
	}
}
