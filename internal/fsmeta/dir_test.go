package fsmeta

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestOpenDirMatchesOS lists a directory larger than one getdents buffer,
// with names of every awkward kind, and compares with os.ReadDir.
func TestOpenDirMatchesOS(t *testing.T) {
	dir := t.TempDir()
	names := []string{"a\nb", "\xff\xfe", "..x", ".hidden", "-", strings.Repeat("n", 255), "ünï"}
	for i := 0; i < 1500; i++ {
		names = append(names, strings.Repeat("f", i%40)+"-"+string(rune('a'+i%26))+filepath.Base(t.Name())+"-"+itoa(i))
	}
	for i, n := range names {
		p := filepath.Join(dir, n)
		var err error
		if i%7 == 0 {
			err = os.Mkdir(p, 0o700)
		} else {
			err = os.WriteFile(p, nil, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/nowhere", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	fd, got, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The descriptor lstats entries as lstat does by path.
	for _, n := range []string{"link", names[0], names[1]} {
		var st, want syscall.Stat_t
		if err := LstatAt(fd, n, &st); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Lstat(filepath.Join(dir, n), &want); err != nil {
			t.Fatal(err)
		}
		if st != want {
			t.Errorf("LstatAt(%q) = %+v, lstat %+v", n, st, want)
		}
	}
	if err := LstatAt(fd, "missing", new(syscall.Stat_t)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LstatAt(missing): %v", err)
	}
	syscall.Close(fd)
	want, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	if len(got) != len(want) {
		t.Fatalf("openDir: %d entries, os.ReadDir %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i].Name() {
			t.Fatalf("entry %d: openDir %q, os.ReadDir %q", i, got[i], want[i].Name())
		}
	}
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

// TestOpenDirErrors: not a directory, a symlink to one (not followed),
// missing.
func TestOpenDirErrors(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l := filepath.Join(dir, "link")
	if err := os.Symlink(dir, l); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f, l, filepath.Join(dir, "missing")} {
		if fd, _, err := OpenDir(p); err == nil {
			syscall.Close(fd)
			t.Errorf("OpenDir(%s): no error", p)
		}
	}
}

func record(name string, typ byte) []byte {
	n := 19 + len(name) + 1
	n = (n + 7) &^ 7
	b := make([]byte, n)
	binary.NativeEndian.PutUint16(b[16:], uint16(n))
	b[18] = typ
	copy(b[19:], name)
	return b
}

func TestParseDirents(t *testing.T) {
	buf := append(append(append(record(".", 4), record("..", 4)...), record("sub", 4)...), record("file", 8)...)
	got, err := parseDirents(nil, buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sub", "file"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	bad := record("x", 8)
	binary.NativeEndian.PutUint16(bad[16:], 200) // longer than the buffer
	for name, b := range map[string][]byte{"short": buf[:10], "reclen past end": bad, "reclen zero": make([]byte, 24)} {
		if _, err := parseDirents(nil, b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzParseDirents(f *testing.F) {
	f.Add(append(record("a", 8), record("b", 4)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := parseDirents(nil, b)
		for _, name := range out {
			if name == "" || name == "." || name == ".." || strings.IndexByte(name, 0) >= 0 {
				t.Fatalf("bad name %q (err %v)", name, err)
			}
		}
	})
}
