package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Log limits: a job keeps its first logHead bytes and its last logTail
// bytes; what lies between is dropped and the cut is said in the log.
const (
	logHead       = 1 << 20
	logTail       = 1 << 20
	logChunkBytes = 32 << 10
	logFlushEvery = 500 * time.Millisecond
)

// logStore is where a job log's chunks go.
type logStore interface {
	AppendLog(ctx context.Context, jobID int64, text string) (int64, error)
	ReplaceLog(ctx context.Context, jobID, seq int64, text string, from, to int64) error
}

// jobLog collects a job's log lines, masks secrets, and stores them in
// chunks: when logChunkBytes have gathered or logFlushEvery has passed.
// Safe for concurrent use.
type jobLog struct {
	store  logStore
	jobID  int64
	log    *slog.Logger
	notify func()

	mu      sync.Mutex
	masker  *strings.Replacer
	secrets []string
	buf     strings.Builder
	written int64 // bytes stored so far
	// After the head is full: the seq of the cut marker, and the chunks
	// stored after it with their sizes (the tail), oldest first.
	cutSeq   int64
	cutBytes int64
	tail     []tailChunk
	timer    *time.Timer
	closed   bool
}

type tailChunk struct {
	seq  int64
	size int64
}

func newJobLog(store logStore, jobID int64, log *slog.Logger, notify func()) *jobLog {
	return &jobLog{store: store, jobID: jobID, log: log, notify: notify, masker: strings.NewReplacer()}
}

// mask adds secret values that must never appear in the log. Values
// shorter than 6 bytes are not masked (they would mask ordinary words);
// multi-line values are masked line by line.
func (l *jobLog) mask(values ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range values {
		for _, line := range strings.Split(v, "\n") {
			line = strings.TrimSpace(line)
			if len(line) >= 6 && !slices.Contains(l.secrets, line) {
				l.secrets = append(l.secrets, line)
			}
		}
	}
	// Longest first, so a secret containing another is masked whole.
	slices.SortFunc(l.secrets, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(l.secrets))
	for _, s := range l.secrets {
		pairs = append(pairs, s, "********")
	}
	l.masker = strings.NewReplacer(pairs...)
}

// Printf logs one line (a newline is added).
func (l *jobLog) Printf(format string, args ...any) { l.Line(fmt.Sprintf(format, args...)) }

// Line logs one line of a tool's output or of the runner.
func (l *jobLog) Line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	s = l.masker.Replace(strings.TrimRight(s, "\r\n"))
	l.buf.WriteString(s)
	l.buf.WriteByte('\n')
	if l.buf.Len() >= logChunkBytes {
		l.flushLocked()
		return
	}
	if l.timer == nil {
		l.timer = time.AfterFunc(logFlushEvery, l.Flush)
	}
}

// Flush stores what has gathered.
func (l *jobLog) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

// Close flushes and refuses further lines.
func (l *jobLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	l.closed = true
}

func (l *jobLog) flushLocked() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.buf.Len() == 0 {
		return
	}
	text := l.buf.String()
	l.buf.Reset()
	// The store outlives a cancelled job: its log must be kept.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if l.cutSeq == 0 && l.written+int64(len(text)) > logHead {
		seq, err := l.store.AppendLog(ctx, l.jobID, "")
		if err != nil {
			l.log.Error("store job log", "err", err)
			return
		}
		l.cutSeq = seq
	}
	seq, err := l.store.AppendLog(ctx, l.jobID, text)
	if err != nil {
		l.log.Error("store job log", "err", err)
		return
	}
	l.written += int64(len(text))
	if l.cutSeq != 0 {
		l.tail = append(l.tail, tailChunk{seq, int64(len(text))})
		var kept int64
		for _, c := range l.tail {
			kept += c.size
		}
		drop := 0
		for kept > logTail && drop < len(l.tail)-1 {
			kept -= l.tail[drop].size
			l.cutBytes += l.tail[drop].size
			drop++
		}
		if drop > 0 {
			marker := fmt.Sprintf("[... %d bytes of this log were dropped here: the first %d and the last %d bytes are kept ...]\n", l.cutBytes, logHead, logTail)
			if err := l.store.ReplaceLog(ctx, l.jobID, l.cutSeq, marker, l.tail[0].seq, l.tail[drop-1].seq); err != nil {
				l.log.Error("trim job log", "err", err)
			}
			l.tail = slices.Delete(l.tail, 0, drop)
		}
	}
	if l.notify != nil {
		l.notify()
	}
}
