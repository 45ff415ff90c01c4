// Command export measures what an export costs the MyT server: the peak
// RSS of the `myt serve` process while a platform's records stream from
// its worker through MyT to a client, and the export's rate.
//
// It works against a running MyT (MYT_SERVER, MYT_TOKEN) and a running
// platform of it (-platform). With -seed N it first writes N records into
// the platform's database through the worker's POST /v1/import (the
// worker's API port on this host, -worker, and its token file,
// -worker-token-file; the records are generated as they are sent). Then
// it exports them through MyT's GET /api/v1/platforms/{id}/export, the
// route `myt data export` uses, reading as fast as it can into a counter,
// while it samples the server's VmRSS (-pid) every 10 ms. It prints one
// line per round and the server's VmHWM.
//
// e2e's TestExportMemory deploys a local platform and runs this program
// against it; see bench/export/README.md for the figures.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/myt-iot/myt/httpapi"
)

func main() {
	platform := flag.String("platform", "", "the platform to export (name)")
	pid := flag.Int("pid", 0, "the myt serve process whose memory is sampled")
	seed := flag.Int("seed", 0, "first import this many records through the worker")
	workerURL := flag.String("worker", "http://127.0.0.1:18080", "the platform worker's API (for -seed)")
	tokenFile := flag.String("worker-token-file", "", "the worker API token's file (for -seed)")
	formats := flag.String("formats", "ndjson,csv", "export formats, one round each")
	flag.Parse()
	if *platform == "" || *pid == 0 {
		log.Fatal("-platform and -pid are required")
	}
	ctx := context.Background()
	c := httpapi.NewClient(os.Getenv("MYT_SERVER"), os.Getenv("MYT_TOKEN"))
	p, err := c.PlatformByName(ctx, *platform)
	if err != nil {
		log.Fatal(err)
	}
	if *seed > 0 {
		tok, err := os.ReadFile(*tokenFile)
		if err != nil {
			log.Fatal(err)
		}
		start := time.Now()
		n, err := importRecords(ctx, *workerURL, strings.TrimSpace(string(tok)), *seed)
		if err != nil {
			log.Fatalf("seed: %v", err)
		}
		fmt.Printf("seeded %d records through the worker's import in %s (%.0f records/s)\n", n, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
	}
	fmt.Printf("%-7s %10s %12s %8s %9s %14s %14s %14s\n", "format", "rows", "bytes", "seconds", "MB/s", "serve RSS MiB", "peak RSS MiB", "client RSS MiB")
	for _, format := range strings.Split(*formats, ",") {
		before := rss(*pid, "VmRSS")
		s := sample(*pid)
		cw := &counter{}
		start := time.Now()
		n, err := c.Export(ctx, p.ID, "", "", "", format, cw)
		took := time.Since(start)
		peak := s()
		if err != nil {
			log.Fatalf("export %s: %v", format, err)
		}
		rows := cw.lines
		if format == "csv" {
			rows-- // the header
		}
		fmt.Printf("%-7s %10d %12d %8.1f %9.1f %14.1f %14.1f %14.1f\n", format, rows, n, took.Seconds(), float64(n)/took.Seconds()/1e6,
			mib(before), mib(peak), mib(clientPeak))
	}
	fmt.Printf("myt serve VmHWM (its peak over its whole life, deploy included): %.1f MiB\n", mib(rss(*pid, "VmHWM")))
}

// importRecords streams n generated records into the worker's import,
// ids b-0..b-(n-1), ten devices, one millisecond apart.
func importRecords(ctx context.Context, workerURL, token string, n int) (int, error) {
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range n {
			fmt.Fprintf(bw, `{"id":"b-%d","device":"bench-%d","topic":"myt/bench-%d/env","ts":%q,"fields":{"temperature":%d.5,"note":"r%d"}}`+"\n",
				i, i%10, i%10, t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i%1000, i)
		}
		pw.CloseWithError(bw.Flush())
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, workerURL+"/v1/import", pr)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("import: %s %s", resp.Status, body)
	}
	i := bytes.Index(body, []byte(`"imported":`))
	if i < 0 {
		return 0, errors.New("import: " + string(body))
	}
	rest := body[i+len(`"imported":`):]
	j := bytes.IndexAny(rest, ",}")
	return strconv.Atoi(string(rest[:j]))
}

// counter counts lines and keeps nothing.
type counter struct{ lines int }

// clientPeak is this process's largest VmRSS during a round: the
// client's side of the stream.
var clientPeak int64

func (c *counter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// sample polls the process's VmRSS every 10 ms until the returned
// function is called, which returns the largest seen (bytes). It
// samples this process's RSS as well (clientPeak).
func sample(pid int) func() int64 {
	var mu sync.Mutex
	var peak int64
	clientPeak = 0
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			v := rss(pid, "VmRSS")
			me := rss(os.Getpid(), "VmRSS")
			mu.Lock()
			peak = max(peak, v)
			clientPeak = max(clientPeak, me)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// rss reads a Vm* line of /proc/PID/status, in bytes.
func rss(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
