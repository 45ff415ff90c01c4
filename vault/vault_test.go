package vault_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myt-iot/myt/vault"
)

var fast = vault.Params{Time: 1, Memory: 1024, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h := vault.HashPassword("correct horse battery", fast)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatal("hash contains the password")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		ok, err := vault.VerifyPassword(h, pw)
		if err != nil || ok != want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if h2 := vault.HashPassword("correct horse battery", fast); h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if _, err := vault.VerifyPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Error("a non-argon2id hash was accepted")
	}
}

func TestSealBindsKeyAndAAD(t *testing.T) {
	key, other := vault.NewKey(), vault.NewKey()
	sealed, err := vault.Seal(key, []byte("AKIA secret"), []byte("row 1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("AKIA secret")) {
		t.Fatal("plaintext visible in sealed value")
	}
	if pt, err := vault.Open(key, sealed, []byte("row 1")); err != nil || string(pt) != "AKIA secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := vault.Open(key, sealed, []byte("row 2")); !errors.Is(err, vault.ErrOpen) {
		t.Errorf("opened with another row's binding: %v", err)
	}
	if _, err := vault.Open(other, sealed, []byte("row 1")); !errors.Is(err, vault.ErrOpen) {
		t.Errorf("opened with another key: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := vault.Open(key, sealed, []byte("row 1")); !errors.Is(err, vault.ErrOpen) {
		t.Errorf("opened a tampered value: %v", err)
	}
}

func TestWrongPasswordCannotUnwrap(t *testing.T) {
	salt := vault.NewSalt()
	dataKey := vault.NewKey()
	wrapped, err := vault.Seal(vault.DeriveKey("right password", salt, fast), dataKey, []byte("user 1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vault.Open(vault.DeriveKey("wrong password", salt, fast), wrapped, []byte("user 1")); !errors.Is(err, vault.ErrOpen) {
		t.Fatalf("wrong password unwrapped the data key: %v", err)
	}
	got, err := vault.Open(vault.DeriveKey("right password", salt, fast), wrapped, []byte("user 1"))
	if err != nil || !bytes.Equal(got, dataKey) {
		t.Fatalf("right password: %v", err)
	}
}

func TestServerKeyFile(t *testing.T) {
	t.Setenv(vault.ServerKeyEnv, "")
	dir := t.TempDir()
	k1, fromEnv, err := vault.LoadServerKey(dir)
	if err != nil || fromEnv || len(k1) != vault.KeySize {
		t.Fatalf("LoadServerKey = %d bytes, %v, %v", len(k1), fromEnv, err)
	}
	st, err := os.Stat(filepath.Join(dir, vault.ServerKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	k2, _, err := vault.LoadServerKey(dir)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load returned another key (%v)", err)
	}
	// A key file saved by an editor (CRLF, trailing space) still reads.
	edited := filepath.Join(dir, "edited.key")
	if err := os.WriteFile(edited, []byte(base64.StdEncoding.EncodeToString(k1)+" \r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k3, err := vault.ReadKeyFile(edited); err != nil || !bytes.Equal(k1, k3) {
		t.Fatalf("ReadKeyFile of an edited key file = %v; want the key", err)
	}
	os.Chmod(filepath.Join(dir, vault.ServerKeyFile), 0o644)
	if _, _, err := vault.LoadServerKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file was accepted: %v", err)
	}
	t.Setenv(vault.ServerKeyEnv, "c2hvcnQ=")
	if _, _, err := vault.LoadServerKey(dir); err == nil {
		t.Fatal("a short MYT_SERVER_KEY was accepted")
	}
}

// TestConcurrentHashesAreBounded: 32 password hashes at once, of 16 MiB
// each, never hold more than a few of those 16 MiB at a time — whatever
// path they come from (setup, a password change, a new user), not only
// sign-in, which its guard bounds first.
func TestConcurrentHashesAreBounded(t *testing.T) {
	p := vault.Params{Time: 1, Memory: 16 * 1024, Threads: 1}
	const n = 32
	runtime.GC()
	base := heapObjects()
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if h := heapObjects(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := vault.HashPassword(fmt.Sprintf("password %d", i), p)
			if ok, err := vault.VerifyPassword(h, fmt.Sprintf("password %d", i)); !ok || err != nil {
				t.Errorf("hash %d does not verify: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(done)
	<-sampled
	growth := int64(peak.Load()) - int64(base)
	// GOMAXPROCS hashes in flight, and as much again of finished ones'
	// garbage (the collector lets the heap reach twice the live size).
	limit := int64(2*(runtime.GOMAXPROCS(0)+4)) * 16 << 20
	t.Logf("peak heap growth %d MiB for %d concurrent 16 MiB hashes (limit %d MiB)", growth>>20, n, limit>>20)
	if growth > limit {
		t.Errorf("the heap grew by %d MiB: more hashes ran at once than the process allows", growth>>20)
	}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
