package deploy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/myt-iot/myt/vault"
)

// TestBackupFileRoundTrip stores dumps of several sizes (around the
// encryption chunk) plain and encrypted, and reads them back whole.
func TestBackupFileRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, backupChunk - 1, backupChunk, backupChunk + 1, 3*backupChunk + 17} {
		for _, enc := range []bool{false, true} {
			data := make([]byte, size)
			rand.Read(data)
			var key []byte
			if enc {
				key = vault.NewKey()
			}
			path := filepath.Join(t.TempDir(), "b.dump")
			n, sum, err := storeBackup(path, bytes.NewReader(data), key, "7/1")
			if err != nil {
				t.Fatalf("size %d enc %v: %v", size, enc, err)
			}
			fi, _ := os.Stat(path)
			if fi.Size() != n || fi.Mode().Perm() != 0o600 {
				t.Errorf("size %d enc %v: stored %d bytes mode %v, reported %d", size, enc, fi.Size(), fi.Mode(), n)
			}
			if _, err := os.Stat(path + partSuffix); !os.IsNotExist(err) {
				t.Errorf("the part file is left: %v", err)
			}
			if enc && size > 64 && bytes.Contains(mustRead(t, path), data[:64]) {
				t.Errorf("size %d: the encrypted file holds the plain bytes", size)
			}
			rc, err := openBackup(path, sum, key, "7/1")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("size %d enc %v: read back %d bytes, err %v", size, enc, len(got), err)
			}
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBackupFileTampered: a changed byte, a cut file, frames of another
// backup or a wrong key fail the read, never silently.
func TestBackupFileTampered(t *testing.T) {
	data := make([]byte, 2*backupChunk+100)
	rand.Read(data)
	key := vault.NewKey()
	dir := t.TempDir()
	store := func(name string, key []byte, ident string) (string, string) {
		path := filepath.Join(dir, name)
		_, sum, err := storeBackup(path, bytes.NewReader(data), key, ident)
		if err != nil {
			t.Fatal(err)
		}
		return path, sum
	}
	read := func(path, sum string, key []byte, ident string) error {
		rc, err := openBackup(path, sum, key, ident)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	}
	plain, plainSum := store("plain", nil, "7/1")
	b := mustRead(t, plain)
	b[len(b)/2] ^= 1
	os.WriteFile(plain, b, 0o600)
	if err := read(plain, plainSum, nil, "7/1"); !errors.Is(err, errBackupChecksum) {
		t.Errorf("a flipped byte in a plain backup: %v, want a checksum error", err)
	}
	if err := verifyBackup(plain, plainSum); !errors.Is(err, errBackupChecksum) {
		t.Errorf("verify a flipped byte: %v", err)
	}

	enc, encSum := store("enc", key, "7/1")
	if err := read(enc, encSum, vault.NewKey(), "7/1"); err == nil {
		t.Error("read with another key")
	}
	if err := read(enc, encSum, key, "7/2"); err == nil {
		t.Error("read as another backup")
	}
	// Cut after the first frame: the frames left open, but the last one
	// is missing. The checksum given is the cut file's own, so only the
	// framing can tell.
	whole := mustRead(t, enc)
	first := len(backupMagic) + 5 + int(uint32(whole[len(backupMagic)+1])<<24|uint32(whole[len(backupMagic)+2])<<16|uint32(whole[len(backupMagic)+3])<<8|uint32(whole[len(backupMagic)+4]))
	cut := filepath.Join(dir, "cut")
	os.WriteFile(cut, whole[:first], 0o600)
	_, cutSum, _ := storeBackup(filepath.Join(dir, "cut2"), bytes.NewReader(whole[:first]), nil, "")
	if err := read(cut, cutSum, key, "7/1"); err == nil {
		t.Error("a backup cut after its first frame read without error")
	}
}

// TestBackupFileFailedDumpLeavesNothing: a dump that fails midway leaves
// neither the backup nor its part file.
func TestBackupFileFailedDumpLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.dump")
	r := io.MultiReader(bytes.NewReader(make([]byte, 5000)), errReader{})
	if _, _, err := storeBackup(path, r, nil, ""); err == nil {
		t.Fatal("a failed dump was stored")
	}
	for _, p := range []string{path, path + partSuffix} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is left: %v", p, err)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("pg_dump: connection lost") }
