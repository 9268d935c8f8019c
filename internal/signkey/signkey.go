// Package signkey keeps the ed25519 signing keys of the data directory:
// NAME.key (PEM "PRIVATE KEY", PKCS#8 DER, mode 0600) beside NAME.pub (PEM
// "PUBLIC KEY", PKIX DER). The audit log signs its checkpoints and anchors
// with "audit", the integrity monitor its baselines with "integrity". Keys
// are named by ID so that a verifier can say which key signed what.
package signkey

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

// maxKeyFile caps how much of a key file is read.
const maxKeyFile = 16 << 10

// ID names a public key: the first 8 bytes of SHA-256 of the raw 32-byte
// key, in hex.
func ID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// LoadOrCreate returns the signing key kept in dir/NAME.key (PEM, PKCS#8,
// mode 0600), creating it and dir/NAME.pub (PEM, PKIX) when the key does
// not exist yet. It refuses a key file that group or other may access, and
// a NAME.pub that does not match the key. Errors start with name.
func LoadOrCreate(dir, name string) (ed25519.PrivateKey, error) {
	return LoadOrCreateWith(dir, name, rand.Reader)
}

// LoadOrCreateWith is LoadOrCreate drawing a new key from random (tests).
func LoadOrCreateWith(dir, name string, random io.Reader) (ed25519.PrivateKey, error) {
	key, err := loadKey(name, filepath.Join(dir, name+".key"))
	if errors.Is(err, os.ErrNotExist) {
		key, err = createKey(dir, name, random)
	}
	if err != nil {
		return nil, err
	}
	if err := ensurePublicKey(dir, name, key.Public().(ed25519.PublicKey)); err != nil {
		return nil, err
	}
	return key, nil
}

// Load returns the existing key dir/NAME.key, with the same checks as
// LoadOrCreate, and never creates one: for commands that must sign with
// the key an earlier command made.
func Load(dir, name string) (ed25519.PrivateKey, error) {
	key, err := loadKey(name, filepath.Join(dir, name+".key"))
	if err != nil {
		return nil, err
	}
	if err := ensurePublicKey(dir, name, key.Public().(ed25519.PublicKey)); err != nil {
		return nil, err
	}
	return key, nil
}

func loadKey(name, path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: open signing key: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: stat signing key: %w", name, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: signing key %s has mode %04o, readable beyond its owner; run chmod 600 %s (and consider the key exposed)", name,
			path, st.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("%s: read signing key %s: %w", name, path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: signing key %s is not a PEM \"PRIVATE KEY\" block", name, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: signing key %s: %w", name, path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: signing key %s is a %T, want ed25519", name, path, k)
	}
	return key, nil
}

// createKey writes a new key without ever exposing a partial file: it is
// written to a temporary file and hard-linked into place, which fails if
// another process created the key first (that key is then loaded).
func createKey(dir, name string, random io.Reader) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("%s: generate signing key: %w", name, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%s: encode signing key: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: create key directory: %w", name, err)
	}
	path := filepath.Join(dir, name+".key")
	tmp, err := os.CreateTemp(dir, "."+name+".key-*")
	if err != nil {
		return nil, fmt.Errorf("%s: create signing key: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSynced(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, fmt.Errorf("%s: write signing key: %w", name, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return loadKey(name, path)
		}
		return nil, fmt.Errorf("%s: install signing key %s: %w", name, path, err)
	}
	if err := SyncDir(dir); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return key, nil
}

// ensurePublicKey writes NAME.pub if missing and otherwise checks it is the
// key's public half, so a swapped pair is noticed at start.
func ensurePublicKey(dir, name string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%s: encode public key: %w", name, err)
	}
	want := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(dir, name+".pub")
	got, err := os.ReadFile(path)
	switch {
	case err == nil:
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			return fmt.Errorf("%s: %s does not match %s (key id %s); one of them was replaced: restore the original pair", name,
				path, filepath.Join(dir, name+".key"), ID(pub))
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		if err := WriteFileAtomic(path, want, 0o644); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	default:
		return fmt.Errorf("%s: read public key: %w", name, err)
	}
}

// ReadPublic parses a PEM "PUBLIC KEY" (PKIX) ed25519 key such as
// audit.pub, for verifying with a key kept apart from the data directory.
func ReadPublic(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("public key is not a PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is a %T, want ed25519", k)
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

// WriteFileAtomic replaces path with data via a synced temporary file and a
// rename, so readers see the old or the new content, never a mix.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return WriteAtomic(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic for content written by write, which
// streams into the temporary file.
func WriteAtomic(path string, mode os.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, so that names created, renamed or removed
// in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
