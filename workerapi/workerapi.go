// Package workerapi is MyT's client of a running platform's worker API:
// trying handler code in the platform's worker and listing, replaying and
// purging its dead letters (myt.WorkerService). The API listens on the
// platform host's loopback (render.WorkerHostPort), reached through a
// Dialer: directly for a local platform, over the platform's SSH
// connection for ssh and cloud hosts (monitor.Targets).
package workerapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt"
)

// DialFunc opens a connection to an address on the platform's host.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer reaches a platform host's loopback ports.
type Dialer interface {
	// DialPlatform returns a dial function for p's host and a function
	// that releases what it holds (an SSH connection).
	DialPlatform(ctx context.Context, p *myt.Platform) (DialFunc, func(), error)
}

// SecretStore reads a platform's sealed secrets (sqlite.PlatformSecrets).
type SecretStore interface {
	Get(ctx context.Context, platformID int64, name string) ([]byte, error)
}

// Service implements myt.WorkerService.
type Service struct {
	Platforms myt.PlatformService
	Secrets   SecretStore
	Dialer    Dialer
	// Timeout bounds one call (default 2 minutes: a replay of many dead
	// letters takes a while).
	Timeout time.Duration
}

var _ myt.WorkerService = (*Service)(nil)

// call makes one request to the first worker of the principal's running
// platform and decodes a 2xx JSON answer into out; the whole call is
// bounded by the service's timeout.
func (s *Service) call(ctx context.Context, platformID int64, method, path string, body any, out any) error {
	w, err := s.running(ctx, platformID)
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	contentType := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	resp, err := s.open(ctx, w, method, path, contentType, rd)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("the worker of %s did not answer within %s", w.p.Name, timeout)
		}
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("the worker of %s: %w", w.p.Name, err)
	}
	return nil
}

// TestCode implements myt.WorkerService.
func (s *Service) TestCode(ctx context.Context, platformID int64, code, samples string) (*myt.CodeTest, error) {
	if strings.TrimSpace(code) == "" {
		return nil, &myt.Error{Code: myt.EINVALID, Message: "Nothing to try.", Fields: []myt.FieldError{{Field: "code", Message: "empty: a handler defines process(msg)"}}}
	}
	if strings.TrimSpace(samples) == "" {
		return nil, &myt.Error{Code: myt.EINVALID, Message: "Nothing to try it on.", Fields: []myt.FieldError{{Field: "samples", Message: "give at least one message, one JSON document per line"}}}
	}
	var out myt.CodeTest
	err := s.call(ctx, platformID, http.MethodPost, "/v1/handler/test", map[string]string{"code": code, "samples": samples}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeadLetters implements myt.WorkerService.
func (s *Service) DeadLetters(ctx context.Context, platformID int64, limit int) (*myt.DeadLetters, error) {
	if limit <= 0 {
		limit = 50
	}
	var out myt.DeadLetters
	if err := s.call(ctx, platformID, http.MethodGet, "/v1/dead?"+url.Values{"limit": {strconv.Itoa(limit)}}.Encode(), nil, &out); err != nil {
		return nil, err
	}
	if out.Items == nil {
		out.Items = []*myt.DeadLetter{}
	}
	return &out, nil
}

// ReplayDeadLetters implements myt.WorkerService.
func (s *Service) ReplayDeadLetters(ctx context.Context, platformID int64) (*myt.DeadLetterReplay, error) {
	var out myt.DeadLetterReplay
	if err := s.call(ctx, platformID, http.MethodPost, "/v1/dead/replay", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PurgeDeadLetters implements myt.WorkerService.
func (s *Service) PurgeDeadLetters(ctx context.Context, platformID int64) (int, error) {
	var out struct {
		Purged int `json:"purged"`
	}
	if err := s.call(ctx, platformID, http.MethodDelete, "/v1/dead", nil, &out); err != nil {
		return 0, err
	}
	return out.Purged, nil
}

// Samples turns dead letters into sample lines for TestCode: each as the
// message it was ({"topic", "payload", "id"}), or its body as it came when
// that is not JSON (the sample then fails as it did).
func Samples(dl []*myt.DeadLetter) string {
	var b strings.Builder
	for _, d := range dl {
		if d.Encoding != "" || d.Truncated || !json.Valid([]byte(d.Body)) {
			b.WriteString(strings.ReplaceAll(d.Body, "\n", " "))
			b.WriteByte('\n')
			continue
		}
		line, _ := json.Marshal(map[string]any{
			"topic":   strings.ReplaceAll(d.RoutingKey, ".", "/"),
			"payload": json.RawMessage(d.Body),
			"id":      d.ID,
		})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}
