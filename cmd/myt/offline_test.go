package main

import (
	"strings"
	"testing"
)

// TestLockDataDirFailsFast checks that a second holder of the data dir's
// lock is refused at once, with a message naming the dir, and that the
// lock can be taken again once released.
func TestLockDataDirFailsFast(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r2, err := lockDataDir(dir); err == nil {
		r2()
		t.Fatal("the data dir was locked twice")
	} else if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("second lock: %v", err)
	}
	release()
	r3, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	r3()
}
