package myt_test

import (
	"testing"

	"github.com/myt-iot/myt"
)

func TestParseID(t *testing.T) {
	if id, err := myt.ParseID("42"); err != nil || id != 42 {
		t.Errorf(`ParseID("42") = %d, %v`, id, err)
	}
	for _, s := range []string{"", "0", "-3", "abc", "4x", "99999999999999999999"} {
		if _, err := myt.ParseID(s); myt.ErrorCode(err) != myt.ENOTFOUND {
			t.Errorf("ParseID(%q): err = %v, want code %s", s, err, myt.ENOTFOUND)
		}
	}
}
