package signkey

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNamedKeys: keys of different names live side by side, each with its
// public half, and errors name the key's owner. (The audit package's tests
// cover the refusals: loose modes, swapped pairs, damaged PEM.)
func TestNamedKeys(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateWith(dir, "audit", bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	i, err := LoadOrCreate(dir, "integrity")
	if err != nil {
		t.Fatal(err)
	}
	if a.Equal(i) {
		t.Fatal("two names, one key")
	}
	for _, name := range []string{"audit", "integrity"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPublic(b); err != nil {
			t.Errorf("%s.pub: %v", name, err)
		}
	}
	again, err := LoadOrCreate(dir, "integrity")
	if err != nil || !again.Equal(i) {
		t.Fatalf("reload: %v", err)
	}
	if k, err := Load(dir, "integrity"); err != nil || !k.Equal(i) {
		t.Fatalf("Load: %v", err)
	}
	empty := t.TempDir()
	if _, err := Load(empty, "integrity"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load without a key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(empty, "integrity.key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("Load created a key")
	}
	if err := os.Chmod(filepath.Join(dir, "integrity.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, "integrity"); err == nil || !strings.HasPrefix(err.Error(), "integrity: ") {
		t.Errorf("loose mode: %v, want an error starting with the name", err)
	}
}
