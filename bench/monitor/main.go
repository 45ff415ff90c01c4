// Command monitor is MyT's poll-cost benchmark: what the monitor's Poller
// costs the MyT server to watch many platforms. In one run it measures,
// side by side, N simulated platforms polled at a scaled-down interval:
//
//   - healthy platforms, samples recorded in a real SQLite history;
//   - the same without recording (a store that discards), to split the
//     cost of polling from the cost of storing;
//   - the same platforms with a fifth of them hung (their endpoints never
//     answer, so every poll of them runs into the timeout).
//
// The simulated platforms run in a child process (this program with
// -serve): each is a real worker HTTP API (worker.HTTPHandler, its
// Prometheus registry counting) and a management API answering the ingest
// queue as RabbitMQ 3.13 does. Only the polling process's CPU (getrusage)
// is counted. For each scenario it prints polls, CPU per poll, the CPU
// share of one core extrapolated to the default 30 s interval, Go heap in
// use, peak RSS and goroutines. See docs/monitor.md for the figures.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/render"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
	"github.com/myt-iot/myt/worker"
)

// endpoints are one simulated platform's URLs.
type endpoints struct {
	Worker, Management string
}

const password = "bench-admin-password"

// serve runs the simulated platforms until stdin closes, after printing
// their endpoints as one JSON line: n healthy, then hung ones.
func serve(n, hung int) {
	var out []endpoints
	tick := time.NewTicker(100 * time.Millisecond)
	var workers []*worker.Worker
	for i := range n + hung {
		if i >= n {
			block := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
			out = append(out, endpoints{httptest.NewServer(block).URL, httptest.NewServer(block).URL})
			continue
		}
		w := worker.New(&worker.Config{}, nil, slog.New(slog.DiscardHandler))
		w.Metrics.DBUp.Set(1)
		w.Metrics.BrokerUp.Set(1)
		workers = append(workers, w)
		h := w.HTTPHandler("")
		ws := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/readyz" {
				fmt.Fprintln(rw, "ready")
				return
			}
			h.ServeHTTP(rw, r)
		}))
		start := time.Now()
		ms := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if _, pw, ok := r.BasicAuth(); !ok || pw != password {
				http.Error(rw, `{"error":"not_authorized"}`, http.StatusUnauthorized)
				return
			}
			pub := int(time.Since(start).Seconds() * 100)
			rw.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(rw, `{"consumers":1,"messages":%d,"messages_ready":%d,"messages_unacknowledged":0,"message_stats":{"ack":%d,"ack_details":{"rate":100.0},"deliver_get":%d,"deliver_get_details":{"rate":100.0},"publish":%d,"publish_details":{"rate":100.0}},"name":"myt.ingest","vhost":"myt","state":"running","type":"quorum"}`,
				i%7, i%7, pub, pub, pub)
		}))
		out = append(out, endpoints{ws.URL, ms.URL})
	}
	go func() {
		for range tick.C {
			for _, w := range workers {
				w.Metrics.Consumed.Add(10)
				w.Metrics.Stored.Add(10)
			}
		}
	}()
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent goes
}

type discard struct{}

func (discard) Append(context.Context, int64, time.Time, []monitor.Sample) error { return nil }

type result struct {
	name                    string
	polls                   int64
	cpuPerPoll, coreShare   float64 // seconds; share of one core at 30 s
	heapMB, rssMB, peakRSS  float64
	goroutines, platformsUp int
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus reads a "VmRSS:"-like field of /proc/self/status in MB.
func procStatus(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func run(name string, store monitor.Appender, platforms []*myt.Platform, eps []endpoints, secrets monitor.SecretStore, interval, duration time.Duration) result {
	client := monitor.NewClient()
	byID := map[int64]endpoints{}
	for i, p := range platforms {
		byID[p.ID] = eps[i]
	}
	ts := &monitor.Targets{Client: client, Secrets: secrets}
	p := &monitor.Poller{Store: store, Interval: interval, Targets: func(pl *myt.Platform) (monitor.Target, error) {
		t, err := ts.For(pl)
		if err != nil {
			return nil, err
		}
		lt := t.(*monitor.LocalTarget)
		// The simulated platforms have no Grafana (one more HTTPS GET a poll).
		lt.WorkerURLs, lt.ManagementURL, lt.GrafanaURL = []string{byID[pl.ID].Worker}, byID[pl.ID].Management, ""
		return lt, nil
	}}
	runtime.GC()
	cpu0 := cpuTime()
	p.Sync(platforms)
	var heap float64
	goroutines := 0
	end := time.Now().Add(duration)
	for time.Now().Before(end) {
		time.Sleep(interval / 3)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = max(heap, float64(ms.HeapInuse)/(1<<20))
		goroutines = max(goroutines, runtime.NumGoroutine())
	}
	var polls int64
	up, reason := 0, ""
	defer func() {
		if reason != "" {
			log.Printf("%s: a platform down: %s", name, reason)
		}
	}()
	for _, pl := range platforms {
		st, _ := p.Status(pl.ID)
		polls += st.Polls
		if len(st.Components) > 0 && st.Components[0].Up {
			up++
		} else if len(st.Components) > 0 && reason == "" {
			reason = st.Components[0].Reason
		}
	}
	p.Stop()
	cpu := cpuTime() - cpu0
	client.CloseIdleConnections()
	r := result{name: name, polls: polls, heapMB: heap, rssMB: procStatus("VmRSS"), peakRSS: procStatus("VmHWM"), goroutines: goroutines, platformsUp: up}
	if polls > 0 {
		r.cpuPerPoll = cpu.Seconds() / float64(polls)
		r.coreShare = r.cpuPerPoll * float64(len(platforms)) / monitor.DefaultInterval.Seconds()
	}
	return r
}

func main() {
	n := flag.Int("platforms", 50, "simulated platforms")
	interval := flag.Duration("interval", 300*time.Millisecond, "poll interval (the default 30s scaled down)")
	duration := flag.Duration("duration", 10*time.Second, "how long each scenario polls")
	serveMode := flag.Bool("serve", false, "run the simulated platforms (internal)")
	hung := flag.Int("hung", 0, "hung platforms, with -serve (internal)")
	flag.Parse()
	if *serveMode {
		serve(*n, *hung)
		return
	}
	nHung := *n / 5

	// The simulated platforms, in a child process: n healthy ones, then
	// nHung hung ones.
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	child := exec.Command(self, "-serve", "-platforms", strconv.Itoa(*n), "-hung", strconv.Itoa(nHung))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { stdin.Close(); child.Wait() }()
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		log.Fatalf("simulated platforms: %v", err)
	}
	var eps []endpoints
	if err := json.Unmarshal(line, &eps); err != nil {
		log.Fatal(err)
	}

	// A real history: an SQLite database with the platforms and their
	// management passwords, sealed.
	dir, err := os.MkdirTemp("", "myt-bench-monitor-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	svc := sqlite.NewServices(db)
	if _, err := svc.Users.CreateUser(ctx, myt.UserCreate{Username: "bench", Password: "bench password 1"}); err != nil {
		log.Fatal(err)
	}
	a, err := svc.Users.Authenticate(ctx, "bench", "bench password 1")
	if err != nil {
		log.Fatal(err)
	}
	uctx := myt.NewContextWithAuth(ctx, a)
	var platforms []*myt.Platform
	for i := range *n {
		d, err := design.Parse(fmt.Appendf(nil, "apiVersion: myt/v1\nkind: Platform\nmetadata: {name: p%d}\nspec:\n  target: {provider: local}\n  database: {kind: timescaledb}\n", i))
		if err != nil {
			log.Fatal(err)
		}
		p, err := svc.Platforms.CreatePlatform(uctx, d)
		if err != nil {
			log.Fatal(err)
		}
		if err := svc.Secrets.Put(ctx, p.ID, render.SecretRabbitMQAdmin, []byte(password)); err != nil {
			log.Fatal(err)
		}
		p.Status, p.DeployedRevision = myt.StatusRunning, 1
		platforms = append(platforms, p)
	}
	store := sqlite.NewMonitorStore(db)
	withHung := append(append([]endpoints{}, eps[:*n-nHung]...), eps[*n:]...)

	results := []result{
		run(fmt.Sprintf("%d healthy, SQLite history", *n), store, platforms, eps[:*n], svc.Secrets, *interval, *duration),
		run(fmt.Sprintf("%d healthy, no history", *n), discard{}, platforms, eps[:*n], svc.Secrets, *interval, *duration),
		run(fmt.Sprintf("%d healthy + %d hung, SQLite", *n-nHung, nHung), store, platforms, withHung, svc.Secrets, *interval, *duration),
	}
	var rows int64
	for _, si := range must(store.Series(ctx, 0)) {
		rows += int64(len(must(store.Rows(ctx, si.ID, monitor.TierRaw, time.Time{}, time.Now().Add(time.Hour)))))
	}
	fmt.Printf("monitor poll cost: %d platforms, interval %s (default %s scaled down), %s per scenario, GOMAXPROCS %d\n\n",
		*n, *interval, monitor.DefaultInterval, *duration, runtime.GOMAXPROCS(0))
	fmt.Printf("%-32s %7s %6s %13s %17s %9s %8s %9s %10s\n", "scenario", "polls", "up", "CPU/poll", "core share @30s", "heap MB", "RSS MB", "peak RSS", "goroutines")
	for _, r := range results {
		fmt.Printf("%-32s %7d %6d %10.3f ms %16.3f%% %9.1f %8.1f %9.1f %10d\n", r.name, r.polls, r.platformsUp, r.cpuPerPoll*1000, r.coreShare*100, r.heapMB, r.rssMB, r.peakRSS, r.goroutines)
	}
	fi, _ := os.Stat(filepath.Join(dir, "myt.db"))
	wal, _ := os.Stat(filepath.Join(dir, "myt.db-wal"))
	size := fi.Size()
	if wal != nil {
		size += wal.Size()
	}
	fmt.Printf("\nhistory: %d raw points written, database %.1f MB (with WAL)\n", rows, float64(size)/(1<<20))
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
