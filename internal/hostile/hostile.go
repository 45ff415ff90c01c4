// Package hostile is a test harness for MyT's input paths: a table of
// adversarial documents (deep nesting, alias bombs, huge strings and keys,
// many keys, huge numbers, invalid UTF-8) and Run, which feeds each to a
// path and fails the test when one takes too long or allocates too much.
// Every package that reads YAML or JSON from a user runs it; the table it
// logs (go test -v -run Hostile) is the one in docs/security.md.
package hostile

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of one input on one path. They are generous, so a slow CI machine
// does not fail them, yet far below what deep nesting cost before MyT
// checked depth before parsing (20,000 "[" took seconds and a heap of
// about a gigabyte).
const (
	MaxTime       = 5 * time.Second
	MaxHeapGrowth = 128 << 20
)

// Input is one hostile document.
type Input struct {
	Name string
	Data []byte
}

// Inputs returns the hostile documents, each under 1 MiB (the largest
// design MyT accepts), so it is the parser, not a size cap, that meets
// them.
func Inputs() []Input {
	const size = 900 << 10
	var b bytes.Buffer

	// Block nesting by indentation: 400 levels of "k:".
	for i := range 400 {
		b.WriteString(strings.Repeat("  ", i) + "k:\n")
	}
	block := bytes.Clone(b.Bytes())

	// A billion laughs: nine levels of nine aliases of the level below.
	b.Reset()
	b.WriteString("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	laughs := bytes.Clone(b.Bytes())

	b.Reset()
	b.WriteString("apiVersion: myt/v1\nkind: Platform\nmetadata:\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	manyKeys := bytes.Clone(b.Bytes())

	return []Input{
		{"deep flow [", bytes.Repeat([]byte("["), 20_000)},
		{"deep JSON {\"a\":", []byte(strings.Repeat(`{"a":`, 20_000))},
		{"deep block - - -", []byte(strings.Repeat("- ", 20_000) + "x\n")},
		{"deep block indentation", block},
		{"alias bomb", laughs},
		{"huge string", []byte("apiVersion: myt/v1\nkind: Platform\nmetadata:\n  name: " + strings.Repeat("x", size) + "\n")},
		{"huge key", []byte("apiVersion: myt/v1\nkind: Platform\nmetadata:\n  " + strings.Repeat("k", size) + ": v\n")},
		{"many keys", manyKeys},
		{"huge number", []byte("apiVersion: myt/v1\nkind: Platform\nspec:\n  database:\n    retentionDays: " + strings.Repeat("9", size) + "e99999\n")},
		{"invalid UTF-8", []byte("apiVersion: myt/v1\nkind: Platform\nmetadata:\n  name: \"\xff\xfe\xc3\x28\"\n  description: \xed\xa0\x80\n")},
	}
}

// Run feeds every input to fn, one subtest each, and fails a subtest whose
// call takes longer than MaxTime or grows the Go heap by more than
// MaxHeapGrowth bytes at its peak (sampled every millisecond while fn
// runs, so garbage made and freed along the way does not count, a tree
// held in memory does). fn should make the call as a user would (an HTTP
// request, a command) and check that the answer is a clean refusal. Run
// logs one table row per input: path, input, bytes, time, peak heap growth
// and total allocation in MiB.
func Run(t *testing.T, path string, fn func(t *testing.T, data []byte)) {
	t.Helper()
	for _, in := range Inputs() {
		t.Run(in.Name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			base := heapBytes()
			var peak atomic.Uint64
			done, stopped := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(stopped)
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				for {
					if h := heapBytes(); h > peak.Load() {
						peak.Store(h)
					}
					select {
					case <-done:
						return
					case <-tick.C:
					}
				}
			}()
			start := time.Now()
			fn(t, in.Data)
			took := time.Since(start)
			close(done)
			<-stopped
			runtime.ReadMemStats(&after)
			growth := uint64(0)
			if p := peak.Load(); p > base {
				growth = p - base
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("| %s | %s | %d | %s | %.1f | %.1f |", path, in.Name, len(in.Data), took.Round(time.Millisecond), mib(growth), mib(alloc))
			if took > MaxTime {
				t.Errorf("%s, %s: took %s, more than %s", path, in.Name, took, MaxTime)
			}
			if growth > MaxHeapGrowth {
				t.Errorf("%s, %s: the heap grew by %.0f MiB, more than %.0f MiB", path, in.Name, mib(growth), mib(MaxHeapGrowth))
			}
		})
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// heapBytes is the heap's size now, live and not yet collected objects
// alike; unlike runtime.ReadMemStats it does not stop the world.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
