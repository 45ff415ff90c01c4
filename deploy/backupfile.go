package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/myt-iot/myt/vault"
)

// Backup files. A dump streams into NAME.part while its SHA-256 is taken
// over the bytes written; the file is synced, renamed to NAME and its
// directory synced; then it is read back and its checksum compared. Only
// then is the backup good. An encrypted backup is a sequence of frames,
// each a chunk of at most backupChunk bytes sealed with the backup's own
// key (vault.Seal, AES-256-GCM), which the server key seals in turn (a
// platform secret): memory holds one chunk, never the dump.
//
//	file  = "MYTBK1\n" frame*
//	frame = flag(1: 0 more, 1 last) length(4, big endian) sealed(length)
//
// Each frame's additional data binds it to the backup, its position and
// its flag, so frames cannot be reordered, swapped between backups, or
// cut off after a non-last one without Open failing.

const (
	backupMagic = "MYTBK1\n"
	backupChunk = 1 << 20
	partSuffix  = ".part"
)

// errBackupChecksum is a stored file that no longer has its checksum.
var errBackupChecksum = errors.New("the backup file does not match its checksum")

// storeBackup writes r to path (through path.part), encrypting it when
// key is set, and returns the stored size and SHA-256. A failure removes
// the part file. The checksum is verified by reading the file back.
func storeBackup(path string, r io.Reader, key []byte, ident string) (int64, string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, "", err
	}
	tmp := path + partSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, "", err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	var dst io.Writer = cw
	var enc *sealWriter
	if key != nil {
		if _, err := cw.Write([]byte(backupMagic)); err != nil {
			return 0, "", err
		}
		enc = &sealWriter{w: cw, key: key, ident: ident}
		dst = enc
	}
	if _, err := io.Copy(dst, r); err != nil {
		return 0, "", err
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return 0, "", err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, "", err
	}
	if err := f.Close(); err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, "", err
	}
	ok = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := verifyBackup(path, sum); err != nil {
		return cw.n, sum, err
	}
	return cw.n, sum, nil
}

// verifyBackup reads path and compares its SHA-256 with sum.
func verifyBackup(path, sum string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if hex.EncodeToString(h.Sum(nil)) != sum {
		return errBackupChecksum
	}
	return nil
}

// openBackup streams a stored backup's dump: decrypted when key is set,
// its checksum taken as it is read; at the end a mismatch (or a cut
// encrypted stream) is the last Read's error.
func openBackup(path, sum string, key []byte, ident string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	hr := &hashReader{r: f, h: sha256.New(), want: sum}
	var r io.Reader = hr
	if key != nil {
		magic := make([]byte, len(backupMagic))
		if _, err := io.ReadFull(hr, magic); err != nil || string(magic) != backupMagic {
			f.Close()
			return nil, errors.New("not an encrypted MyT backup")
		}
		r = &openReader{r: hr, key: key, ident: ident}
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// hashReader checks its bytes' SHA-256 against want at EOF.
type hashReader struct {
	r    io.Reader
	h    hash.Hash
	want string
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(h.h.Sum(nil)) != h.want {
		return n, errBackupChecksum
	}
	return n, err
}

func frameAAD(ident string, index uint64, last bool) []byte {
	aad := []byte("myt-backup\x00" + ident + "\x00")
	aad = binary.BigEndian.AppendUint64(aad, index)
	if last {
		return append(aad, 1)
	}
	return append(aad, 0)
}

// sealWriter seals what it is given in frames of backupChunk bytes; Close
// writes the last frame (possibly empty).
type sealWriter struct {
	w     io.Writer
	key   []byte
	ident string
	buf   []byte
	index uint64
}

func (s *sealWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		room := backupChunk - len(s.buf)
		if room == 0 {
			// A full chunk is the last only if nothing follows: sealed
			// once more bytes arrive.
			if err := s.frame(false); err != nil {
				return 0, err
			}
			continue
		}
		k := min(room, len(p))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

func (s *sealWriter) frame(last bool) error {
	sealed, err := vault.Seal(s.key, s.buf, frameAAD(s.ident, s.index, last))
	if err != nil {
		return err
	}
	var hdr [5]byte
	if last {
		hdr[0] = 1
	}
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(sealed)))
	if _, err := s.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := s.w.Write(sealed); err != nil {
		return err
	}
	s.buf, s.index = s.buf[:0], s.index+1
	return nil
}

func (s *sealWriter) Close() error { return s.frame(true) }

// openReader opens sealWriter's frames.
type openReader struct {
	r     io.Reader
	key   []byte
	ident string
	index uint64
	buf   *bytes.Reader
	done  bool
}

func (o *openReader) Read(p []byte) (int, error) {
	for o.buf == nil || o.buf.Len() == 0 {
		if o.done {
			// Nothing may follow the last frame; reading on also lets
			// the checksum see the end.
			if n, err := io.ReadFull(o.r, make([]byte, 1)); n > 0 {
				return 0, errors.New("data after the last frame of the backup")
			} else if err != io.EOF {
				return 0, err
			}
			return 0, io.EOF
		}
		var hdr [5]byte
		if _, err := io.ReadFull(o.r, hdr[:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("the backup is cut short: %w", err)
		}
		size := binary.BigEndian.Uint32(hdr[1:])
		if size > backupChunk+1024 {
			return 0, errors.New("a backup frame is too long")
		}
		sealed := make([]byte, size)
		if _, err := io.ReadFull(o.r, sealed); err != nil {
			return 0, fmt.Errorf("the backup is cut short: %w", err)
		}
		last := hdr[0] == 1
		plain, err := vault.Open(o.key, sealed, frameAAD(o.ident, o.index, last))
		if err != nil {
			return 0, fmt.Errorf("backup frame %d: %w", o.index, err)
		}
		o.buf, o.index, o.done = bytes.NewReader(plain), o.index+1, last
	}
	return o.buf.Read(p)
}
