package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	random := bytes.NewReader(bytes.Repeat([]byte{7}, 64))
	key, err := loadOrCreateKey(dir, random)
	if err != nil {
		t.Fatal(err)
	}
	if want := testKey(7); !key.Equal(want) {
		t.Errorf("key not derived from the injected randomness")
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %04o, want 0600", st.Mode().Perm())
	}
	pubPEM, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ReadPublicKey(pubPEM)
	if err != nil || !pub.Equal(key.Public()) {
		t.Errorf("audit.pub = %x, %v; want the key's public half", pub, err)
	}
	again, err := LoadOrCreateKey(dir)
	if err != nil || !again.Equal(key) {
		t.Errorf("reload = %v; want the same key", err)
	}
}

func TestLoadKeyRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantErr string
	}{
		{"group-readable key", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, KeyFile), 0o640); err != nil {
				t.Fatal(err)
			}
		}, "chmod 600"},
		{"world-readable key", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, KeyFile), 0o604); err != nil {
				t.Fatal(err)
			}
		}, "chmod 600"},
		{"public key from another pair", func(t *testing.T, dir string) {
			other := t.TempDir()
			if _, err := loadOrCreateKey(other, bytes.NewReader(bytes.Repeat([]byte{9}, 64))); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(other, PublicKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, PublicKeyFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "does not match"},
		{"not PEM", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("hello"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "PRIVATE KEY"},
		{"truncated DER", func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, KeyFile))
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte("MC4CAQAw"), []byte("MC4CAQ"), 1)
			if err := os.WriteFile(filepath.Join(dir, KeyFile), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "audit.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateKey(dir); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			_, err := LoadOrCreateKey(dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("LoadOrCreateKey = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadPublicKeyRejects(t *testing.T) {
	for _, in := range []string{"", "garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		if _, err := ReadPublicKey([]byte(in)); err == nil {
			t.Errorf("ReadPublicKey(%q) succeeded, want an error", in)
		}
	}
}

func TestKeyID(t *testing.T) {
	pub := testKey(1).Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	if got, want := KeyID(pub), hex.EncodeToString(sum[:8]); got != want {
		t.Errorf("KeyID = %q, want %q (first 8 bytes of SHA-256 of the key)", got, want)
	}
	if KeyID(pub) == KeyID(testKey(2).Public().(ed25519.PublicKey)) {
		t.Error("two keys share a key id")
	}
}
