package handler_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/worker/handler"
	"github.com/myt-iot/myt/worker/record"
)

func requirePython(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("python3")
	testenv.Need(t, "python3", err == nil, "install it with `apt-get install python3`")
}

func writeHandler(t *testing.T, code string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "handler.py")
	if err := os.WriteFile(p, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newRunner(t *testing.T, path string, timeout time.Duration) *handler.Runner {
	t.Helper()
	r, err := handler.New(context.Background(), handler.Options{Path: path, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func inputs(payloads ...any) []record.Input {
	var out []record.Input
	for i, p := range payloads {
		out = append(out, record.Input{ID: string(rune('a' + i)), Device: "d", Topic: "myt/d/s", TS: time.Unix(int64(i), 0), Payload: p})
	}
	return out
}

const testHandler = `
import os, time
def process(msg):
    p = msg["payload"]
    print("noise on stdout must not break the protocol")
    if p.get("raise"):
        raise ValueError("bad value %s" % p["raise"])
    if p.get("hang"):
        time.sleep(60)
    if p.get("die"):
        os._exit(9)
    if p.get("drop"):
        return None
    if p.get("fan"):
        return [{"i": i} for i in range(p["fan"])]
    return {"v": p["v"] * 2, "dev": msg["device"], "ts": msg["ts"]}
`

func TestProcess(t *testing.T) {
	requirePython(t)
	r := newRunner(t, writeHandler(t, testHandler), 2*time.Second)
	ins := inputs(
		map[string]any{"v": json.Number("21")},
		map[string]any{"raise": "x"},
		map[string]any{"drop": true},
		map[string]any{"fan": json.Number("3")},
		map[string]any{"hang": true},
		map[string]any{"v": json.Number("1.5")},
		map[string]any{"die": true},
		map[string]any{"v": json.Number("12345678901234567")},
	)
	start := time.Now()
	res, err := r.Process(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("batch of %d with one hang and one crash took %v", len(ins), time.Since(start))
	if len(res) != len(ins) {
		t.Fatalf("got %d results for %d inputs", len(res), len(ins))
	}
	check := func(i int, wantErr string, kind handler.Kind) {
		t.Helper()
		if res[i].Kind != kind {
			t.Errorf("[%d] kind %d, want %d (%q)", i, res[i].Kind, kind, res[i].Err)
		}
		if wantErr == "" && res[i].Err != "" {
			t.Errorf("[%d] unexpected error %q", i, res[i].Err)
		}
		if wantErr != "" && !strings.Contains(res[i].Err, wantErr) {
			t.Errorf("[%d] error %q, want %q", i, res[i].Err, wantErr)
		}
	}
	check(0, "", handler.OK)
	check(1, "ValueError: bad value x", handler.Raised)
	check(2, "", handler.OK)
	check(3, "", handler.OK)
	check(4, "timed out", handler.TimedOut)
	check(5, "", handler.OK)
	check(6, "crashed", handler.Crashed)
	check(7, "", handler.OK)
	if v := res[0].Value.(map[string]any); v["v"] != json.Number("42") || v["dev"] != "d" {
		t.Errorf("result 0 = %v", v)
	}
	if res[2].Value != nil {
		t.Errorf("drop = %v", res[2].Value)
	}
	if fan, _ := res[3].Value.([]any); len(fan) != 3 {
		t.Errorf("fan = %v", res[3].Value)
	}
	if v := res[5].Value.(map[string]any); v["v"] != json.Number("3.0") {
		t.Errorf("result 5 = %v", v)
	}
	if v := res[7].Value.(map[string]any); v["v"] != json.Number("24691357802469134") {
		t.Errorf("big int not exact: %v", v)
	}
	if r.Restarts() != 2 {
		t.Errorf("restarts = %d, want 2", r.Restarts())
	}
	// The restarted process keeps serving.
	res, err = r.Process(context.Background(), inputs(map[string]any{"v": json.Number("2")}))
	if err != nil || res[0].Err != "" {
		t.Fatal(err, res)
	}
}

func TestSwap(t *testing.T) {
	requirePython(t)
	r := newRunner(t, writeHandler(t, "def process(m):\n    return {'ver': 1}\n"), 5*time.Second)
	ctx := context.Background()
	if err := r.Swap(ctx, writeHandler(t, "def process(m):\n    raise SyntaxError(\n")); err == nil {
		t.Fatal("swap to broken handler succeeded")
	}
	if err := r.Swap(ctx, writeHandler(t, "import nonexistent_mod\ndef process(m): pass\n")); err == nil {
		t.Fatal("swap to handler with failing import succeeded")
	}
	res, _ := r.Process(ctx, inputs(map[string]any{}))
	if v := res[0].Value.(map[string]any); v["ver"] != json.Number("1") {
		t.Fatalf("old handler not kept: %v", res)
	}
	// Swap concurrently with a stream of batches: every message is
	// processed exactly once, by either version.
	done := make(chan struct{})
	swapped := make(chan struct{})
	counts := map[string]int{}
	var seq []string // versions in processing order
	total := 0
	go func() {
		defer close(done)
		after := 0
		for after < 20 {
			select {
			case <-swapped:
				after++
			default:
			}
			total += 2
			res, err := r.Process(ctx, inputs(map[string]any{}, map[string]any{}))
			if err != nil {
				t.Error(err)
				return
			}
			for _, x := range res {
				v := string(x.Value.(map[string]any)["ver"].(json.Number))
				counts[v]++
				seq = append(seq, v)
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := r.Swap(ctx, writeHandler(t, "def process(m):\n    return {'ver': 2}\n")); err != nil {
		t.Fatal(err)
	}
	close(swapped)
	<-done
	if counts["1"]+counts["2"] != total || counts["2"] == 0 || counts["1"] == 0 {
		t.Errorf("versions seen: %v", counts)
	}
	// One switch point: 1…1 then 2…2, never the old version after the new.
	switched, back := 0, -1
	for i, v := range seq {
		if v != "1" && v != "2" {
			t.Fatalf("message %d processed by version %q", i, v)
		}
		if i > 0 && v != seq[i-1] {
			switched++
			if v != "2" && back < 0 {
				back = i
			}
		}
	}
	if switched != 1 || seq[0] != "1" || back >= 0 {
		t.Errorf("versions switched %d times, first back to 1 at message %d of %d (want one switch, 1 to 2)", switched, back, len(seq))
	}
	t.Logf("messages by version across the swap: %v", counts)
}

func TestTemplateRuns(t *testing.T) {
	requirePython(t)
	r := newRunner(t, writeHandler(t, string(handler.Template())), 5*time.Second)
	res, err := r.Process(context.Background(), inputs(map[string]any{"temp_f": json.Number("212")}, json.Number("5")))
	if err != nil {
		t.Fatal(err)
	}
	if v := res[0].Value.(map[string]any); v["temperature"] != json.Number("100.0") {
		t.Errorf("template result %v", res[0])
	}
	if v := res[1].Value.(map[string]any); v["value"] != json.Number("5") {
		t.Errorf("template scalar %v", res[1])
	}
}

// A value the worker cannot decode (Python's json writes a lone surrogate
// as "\ud800") is that message's error, not a broken process: no restart,
// and the rest of the batch keeps its results, numbers exact.
func TestUndecodableResult(t *testing.T) {
	requirePython(t)
	r := newRunner(t, writeHandler(t, "def process(m):\n    if m['payload'].get('bad'):\n        return {'x': '\\ud800'}\n    return {'v': m['payload']['v']}\n"), 5*time.Second)
	res, err := r.Process(context.Background(), inputs(map[string]any{"bad": true}, map[string]any{"v": json.Number("1.50")}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res[0].Err, "handler result: ") || res[0].Kind != handler.BadResult {
		t.Errorf("undecodable result: %+v, want a handler result error", res[0])
	}
	if v, _ := res[1].Value.(map[string]any); res[1].Err != "" || v["v"] != json.Number("1.5") {
		t.Errorf("next result %+v", res[1])
	}
	if r.Restarts() != 0 {
		t.Errorf("restarts = %d, want 0", r.Restarts())
	}
}

// A batch abandoned when ctx ends leaves no results behind for the next
// batch to take as its own.
func TestProcessCanceled(t *testing.T) {
	requirePython(t)
	r := newRunner(t, writeHandler(t, "import time\ndef process(m):\n    if m['payload'].get('slow'):\n        time.sleep(0.5)\n    return {'id': m['id']}\n"), 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := r.Process(ctx, inputs(map[string]any{}, map[string]any{"slow": true}, map[string]any{})); err == nil {
		t.Fatal("Process outlived its context")
	}
	time.Sleep(time.Second) // an old process would have written its results by now
	ins := []record.Input{{ID: "next-1", Payload: map[string]any{}}, {ID: "next-2", Payload: map[string]any{}}}
	res, err := r.Process(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range res {
		if v, _ := x.Value.(map[string]any); v["id"] != ins[i].ID {
			t.Errorf("result %d = %+v, want the one for %s", i, x, ins[i].ID)
		}
	}
}
