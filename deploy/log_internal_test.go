package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// memLog is an in-memory logStore.
type memLog struct {
	mu     sync.Mutex
	chunks map[int64]string
	next   int64
}

func (m *memLog) AppendLog(_ context.Context, _ int64, text string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	m.chunks[m.next] = text
	return m.next, nil
}

func (m *memLog) ReplaceLog(_ context.Context, _, seq int64, text string, from, to int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := from; s <= to; s++ {
		delete(m.chunks, s)
	}
	m.chunks[seq] = text
	return nil
}

func (m *memLog) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for s := int64(1); s <= m.next; s++ {
		b.WriteString(m.chunks[s])
	}
	return b.String()
}

func TestJobLogMasksSecrets(t *testing.T) {
	m := &memLog{chunks: map[int64]string{}}
	l := newJobLog(m, 1, slog.New(slog.DiscardHandler), nil)
	l.mask("s3cr3t-password", "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQAB\n-----END KEY-----", "abc")
	l.Printf("connecting with password s3cr3t-password to host")
	l.Line("key line AAAAB3NzaC1yc2EAAAADAQAB here")
	l.Line("abc is too short to mask")
	l.Close()
	got := m.text()
	for _, secret := range []string{"s3cr3t-password", "AAAAB3NzaC1yc2EAAAADAQAB"} {
		if strings.Contains(got, secret) {
			t.Errorf("log shows %q:\n%s", secret, got)
		}
	}
	if !strings.Contains(got, "password ******** to host") || !strings.Contains(got, "abc is too short") {
		t.Errorf("log:\n%s", got)
	}
}

func TestJobLogKeepsHeadAndTail(t *testing.T) {
	m := &memLog{chunks: map[int64]string{}}
	l := newJobLog(m, 1, slog.New(slog.DiscardHandler), nil)
	line := strings.Repeat("x", 1000)
	const n = 5000 // ~5 MB, more than head + tail
	for i := 0; i < n; i++ {
		l.Printf("%06d %s", i, line)
	}
	l.Close()
	got := m.text()
	if len(got) > logHead+logTail+2*logChunkBytes+1000 {
		t.Errorf("log kept %d bytes, want at most about %d", len(got), logHead+logTail)
	}
	if !strings.HasPrefix(got, "000000 ") || !strings.Contains(got, fmt.Sprintf("%06d ", n-1)) {
		t.Error("head or tail lost")
	}
	if !strings.Contains(got, "bytes of this log were dropped here") {
		t.Error("the cut is not said")
	}
	if strings.Contains(got, fmt.Sprintf("%06d ", n/2)) {
		t.Error("the middle was kept")
	}
}
