package design_test

import (
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/internal/hostile"
)

// TestHostileParse: design.Parse is what the API, the web import and the
// CLI call; every hostile document is refused quickly, with an EINVALID
// error a user can read.
func TestHostileParse(t *testing.T) {
	hostile.Run(t, "design.Parse", func(t *testing.T, data []byte) {
		_, err := design.Parse(data)
		if myt.ErrorCode(err) != myt.EINVALID {
			t.Errorf("Parse = %v, want an EINVALID error", err)
		}
	})
}
