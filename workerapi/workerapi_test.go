package workerapi_test

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/render"
	"github.com/myt-iot/myt/worker"
	"github.com/myt-iot/myt/workerapi"
)

// platforms is the principal's platforms: one running, one designed.
type platforms struct{ myt.PlatformService }

func (platforms) FindPlatformByID(_ context.Context, id int64) (*myt.Platform, error) {
	switch id {
	case 1:
		return &myt.Platform{ID: 1, Name: "home", Status: myt.StatusRunning, Design: myt.NewDesign()}, nil
	case 2:
		return &myt.Platform{ID: 2, Name: "draft", Status: myt.StatusDesigned, Design: myt.NewDesign()}, nil
	}
	return nil, myt.Errorf(myt.ENOTFOUND, "Platform not found.")
}

type secrets map[string]string

func (s secrets) Get(_ context.Context, _ int64, name string) ([]byte, error) {
	if v, ok := s[name]; ok {
		return []byte(v), nil
	}
	return nil, myt.Errorf(myt.ENOTFOUND, "no %s", name)
}

// hostDialer plays the platform's host: its worker port is a real worker
// API served here.
type hostDialer struct {
	worker string // the worker API's real address
	dialed []string
}

func (d *hostDialer) DialPlatform(ctx context.Context, p *myt.Platform) (workerapi.DialFunc, func(), error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.dialed = append(d.dialed, addr)
		if addr != net.JoinHostPort("127.0.0.1", "18080") {
			return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError("not the worker port")}
		}
		return (&net.Dialer{}).DialContext(ctx, network, d.worker)
	}, func() {}, nil
}

// TestTryCodeInTheWorker: the service reaches the worker's API port on
// the platform's host with the platform's token, and says in MyT's words
// what the worker answered: results, code that does not load (EINVALID
// with Python's error), a wrong token (an error, never a result), a
// platform that is not running.
func TestTryCodeInTheWorker(t *testing.T) {
	_, err := exec.LookPath("python3")
	testenv.Need(t, "python3", err == nil, "install it with `apt-get install python3`")
	w := worker.New(worker.DefaultConfig(), nil, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(w.HTTPHandler("the-token"))
	defer srv.Close()
	d := &hostDialer{worker: srv.Listener.Addr().String()}
	svc := &workerapi.Service{Platforms: platforms{}, Secrets: secrets{render.SecretWorkerToken: "the-token\n"}, Dialer: d}
	ctx := context.Background()

	res, err := svc.TestCode(ctx, 1, "def process(msg):\n    return {'t': msg['payload']['t'] + 1}\n", "{\"t\": 1}\n{\"u\": 2}\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 || res.Failed != 1 || len(res.Results[0].Records) != 1 || res.Results[1].Reason != worker.ReasonHandlerError {
		t.Errorf("results: %+v", res)
	}
	if len(d.dialed) != 1 || d.dialed[0] != "127.0.0.1:18080" {
		t.Errorf("dialed %v, want the worker port on the host's loopback", d.dialed)
	}
	_, err = svc.TestCode(ctx, 1, "def process(msg):\n    return (\n", "{}\n")
	if myt.ErrorCode(err) != myt.EINVALID || !strings.Contains(err.Error(), "SyntaxError") {
		t.Errorf("code that does not load: %v, want EINVALID with Python's error", err)
	}
	if _, err := svc.TestCode(ctx, 1, "def process(msg):\n    return None\n", ""); myt.ErrorCode(err) != myt.EINVALID || len(myt.ErrorFields(err)) != 1 {
		t.Errorf("no samples: %v, want EINVALID on samples", err)
	}
	if _, err := svc.TestCode(ctx, 2, "def process(msg):\n    return None\n", "{}\n"); myt.ErrorCode(err) != myt.EINVALID || !strings.Contains(err.Error(), "designed") {
		t.Errorf("a platform that is not running: %v", err)
	}
	bad := &workerapi.Service{Platforms: platforms{}, Secrets: secrets{render.SecretWorkerToken: "stale"}, Dialer: d}
	if res, err := bad.TestCode(ctx, 1, "def process(msg):\n    return None\n", "{}\n"); err == nil || res != nil {
		t.Errorf("a refused token: %+v %v, want an error", res, err)
	}
}

func TestSamplesFromDeadLetters(t *testing.T) {
	got := workerapi.Samples([]*myt.DeadLetter{
		{ID: "a1", RoutingKey: "myt.dev1.env", Body: "{\n  \"t\": 1\n}"},
		{ID: "b2", RoutingKey: "myt.dev2.env", Body: "not json"},
		{ID: "c3", RoutingKey: "myt.dev3.env", Body: "AAEC", Encoding: "base64"},
	})
	want := `{"id":"a1","payload":{"t":1},"topic":"myt/dev1/env"}` + "\nnot json\nAAEC\n"
	if got != want {
		t.Errorf("samples:\n%s\nwant\n%s", got, want)
	}
}
