// The audit signing key is an ed25519 key stored in the data directory as
// audit.key (PEM "PRIVATE KEY", PKCS#8 DER, mode 0600) beside audit.pub (PEM
// "PUBLIC KEY", PKIX DER). Keys are named by KeyID in checkpoints, anchors
// and prune records so that a verifier can say which key signed what.

package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// KeyFile and PublicKeyFile are the names of the checkpoint signing key and
// its public half inside the data directory.
const (
	KeyFile       = "audit.key"
	PublicKeyFile = "audit.pub"
)

// maxKeyFile caps how much of a key file is read.
const maxKeyFile = 16 << 10

// KeyID names a public key in checkpoints and anchors: the first 8 bytes of
// SHA-256 of the raw 32-byte key, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// LoadOrCreateKey returns the audit signing key kept in dir/audit.key (PEM,
// PKCS#8, mode 0600), creating it and dir/audit.pub (PEM, PKIX) when the key
// does not exist yet. It refuses a key file that group or other may access,
// and an audit.pub that does not match the key.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	return loadOrCreateKey(dir, rand.Reader)
}

func loadOrCreateKey(dir string, random io.Reader) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := loadKey(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err = createKey(dir, random)
	}
	if err != nil {
		return nil, err
	}
	if err := ensurePublicKey(dir, key.Public().(ed25519.PublicKey)); err != nil {
		return nil, err
	}
	return key, nil
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: open signing key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: stat signing key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit: signing key %s has mode %04o, readable beyond its owner; run chmod 600 %s (and consider the key exposed)",
			path, st.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("audit: read signing key %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: signing key %s is not a PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: signing key %s is a %T, want ed25519", path, k)
	}
	return key, nil
}

// createKey writes a new key without ever exposing a partial file: it is
// written to a temporary file and hard-linked into place, which fails if
// another process created the key first (that key is then loaded).
func createKey(dir string, random io.Reader) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("audit: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("audit: encode signing key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create key directory: %w", err)
	}
	path := filepath.Join(dir, KeyFile)
	tmp, err := os.CreateTemp(dir, ".audit.key-*")
	if err != nil {
		return nil, fmt.Errorf("audit: create signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSynced(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, fmt.Errorf("audit: write signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return loadKey(path)
		}
		return nil, fmt.Errorf("audit: install signing key %s: %w", path, err)
	}
	return key, syncDir(dir)
}

// ensurePublicKey writes audit.pub if missing and otherwise checks it is the
// key's public half, so a swapped pair is noticed at start.
func ensurePublicKey(dir string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("audit: encode public key: %w", err)
	}
	want := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(dir, PublicKeyFile)
	got, err := os.ReadFile(path)
	switch {
	case err == nil:
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			return fmt.Errorf("audit: %s does not match %s (key id %s); one of them was replaced: restore the original pair",
				path, filepath.Join(dir, KeyFile), KeyID(pub))
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		return writeFileAtomic(path, want, 0o644)
	default:
		return fmt.Errorf("audit: read public key: %w", err)
	}
}

// ReadPublicKey parses a PEM "PUBLIC KEY" (PKIX) ed25519 key such as
// audit.pub, for verifying with a key kept apart from the data directory.
func ReadPublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("audit: public key is not a PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit: public key is a %T, want ed25519", k)
	}
	return pub, nil
}

func writeSynced(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFileAtomic replaces path with data via a synced temporary file and a
// rename, so readers see the old or the new content, never a mix.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("audit: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: write %s: %w", path, err)
	}
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("audit: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("audit: write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync %s: %w", dir, err)
	}
	return nil
}
