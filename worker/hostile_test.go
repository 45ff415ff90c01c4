package worker_test

import (
	"testing"

	"github.com/myt-iot/myt/internal/hostile"
	"github.com/myt-iot/myt/worker"
)

// TestHostileConfig: a hostile worker configuration is refused quickly, in
// bounded memory.
func TestHostileConfig(t *testing.T) {
	hostile.Run(t, "worker.ParseConfig", func(t *testing.T, data []byte) {
		if _, err := worker.ParseConfig(data); err == nil {
			t.Error("ParseConfig accepted it")
		}
	})
}
