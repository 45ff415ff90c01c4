package vault

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/myt-iot/myt/internal/atomicfile"
)

// ServerKeyFile is the server key's file name in the data dir.
const ServerKeyFile = "server.key"

// ServerKeyEnv names the environment variable that may hold the server key
// (base64, 32 bytes) instead of the file.
const ServerKeyEnv = "MYT_SERVER_KEY"

// LoadServerKey returns the server key: from MYT_SERVER_KEY when set,
// otherwise from dataDir/server.key, which is created (0600, random) when
// it does not exist. A key file readable by others is refused.
func LoadServerKey(dataDir string) (key []byte, fromEnv bool, err error) {
	if v := os.Getenv(ServerKeyEnv); v != "" {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(k) != KeySize {
			return nil, false, fmt.Errorf("%s must be %d bytes, base64-encoded (make one with: head -c 32 /dev/urandom | base64)", ServerKeyEnv, KeySize)
		}
		return k, true, nil
	}
	path := filepath.Join(dataDir, ServerKeyFile)
	k, err := ReadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k = NewKey()
		if err := WriteKeyFile(path, k); err != nil {
			return nil, false, err
		}
		return k, false, nil
	}
	return k, false, err
}

// ReadKeyFile reads a key written by WriteKeyFile, refusing a file that
// others may read.
func ReadKeyFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("server key %s is readable by others (mode %v): run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(k) != KeySize {
		return nil, fmt.Errorf("server key %s is not %d base64-encoded bytes", path, KeySize)
	}
	return k, nil
}

// WriteKeyFile writes key to path atomically with mode 0600 (temp file,
// fsync, rename), so a crash leaves the old key or the new one, never half.
func WriteKeyFile(path string, key []byte) error {
	return atomicfile.Write(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
}
