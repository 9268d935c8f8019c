package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/backendtest"
)

// childEnv makes the test binary act as a helper process (see TestMain).
const childEnv = "BULWARK_LOCAL_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode, os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// child runs a helper process on repository dir:
//
//	save-forever: saves 4 MiB packs until killed.
//	save-one:     saves its pid as the config object; exit 0 if it won,
//	              3 if ErrExists, 1 on any other error.
func child(mode, dir string) int {
	b, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	switch mode {
	case "save-forever":
		for i := 0; ; i++ {
			data := make([]byte, 4<<20)
			copy(data, fmt.Sprintf("process %d, pack %d", os.Getpid(), i))
			if err := b.Save(ctx, pack(data), data); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	case "save-one":
		data := bytes.Repeat([]byte(fmt.Sprintf("pid %d\n", os.Getpid())), 1<<14)
		err := b.Save(ctx, backend.Handle{Type: backend.LockFile, Name: "contended"}, data)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, backend.ErrExists):
			return 3
		}
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 1
}

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func pack(data []byte) backend.Handle { return backend.Handle{Type: backend.PackFile, Name: sum(data)} }

// newRepo creates a repository with a config object in a temp directory.
func newRepo(t *testing.T) (*Backend, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	b, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Save(context.Background(), backend.Handle{Type: backend.ConfigFile}, []byte("config")); err != nil {
		t.Fatal(err)
	}
	return b, dir
}

// tempFiles returns the paths, relative to dir, of the ".tmp-*" files under
// dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			rel, _ := filepath.Rel(dir, p)
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b, err := Create(filepath.Join(t.TempDir(), "repo"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if tmp := tempFiles(t, b.dir); len(tmp) > 0 {
				t.Errorf("temp files left behind: %v", tmp)
			}
		})
		return b
	})
}

// TestConformanceWithoutHardLinks runs the suite as on a file system without
// hard links, where Save falls back to renameat2(RENAME_NOREPLACE).
func TestConformanceWithoutHardLinks(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b, err := Create(filepath.Join(t.TempDir(), "repo"))
		if err != nil {
			t.Fatal(err)
		}
		b.link = func(oldname, newname string) error {
			return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EPERM}
		}
		return b
	})
}

// TestSaveWithoutExclusivePrimitive: with neither hard links nor
// RENAME_NOREPLACE, Save refuses instead of risking an overwrite.
func TestSaveWithoutExclusivePrimitive(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EINVAL, syscall.ENOSYS} {
		b, dir := newRepo(t)
		b.link = func(oldname, newname string) error {
			return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EOPNOTSUPP}
		}
		b.renameNoReplace = func(oldname, newname string) error {
			return &os.LinkError{Op: "renameat2", Old: oldname, New: newname, Err: errno}
		}
		data := []byte("payload")
		h := pack(data)
		err := b.Save(context.Background(), h, data)
		if err == nil || !strings.Contains(err.Error(), "neither hard links nor renameat2") || !strings.Contains(err.Error(), h.String()) {
			t.Fatalf("Save with renameat2 failing with %v: err = %v, want an explanation naming %s", errno, err, h)
		}
		if _, err := b.Stat(context.Background(), h); !errors.Is(err, backend.ErrNotExist) {
			t.Fatalf("Stat after the refused Save: %v, want ErrNotExist", err)
		}
		if tmp := tempFiles(t, dir); len(tmp) > 0 {
			t.Fatalf("temp files left behind: %v", tmp)
		}
	}
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) // dir does not exist yet
		wantErr string                         // "" = success
	}{
		{"missing with parents", func(t *testing.T, dir string) {}, ""},
		{"empty", func(t *testing.T, dir string) { mkdir(t, dir) }, ""},
		{"partly created", func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, "keys"))
			write(t, filepath.Join(dir, ".tmp-123"), "partial config")
		}, ""},
		{"existing repository", func(t *testing.T, dir string) {
			b, err := Create(dir)
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(b.dir, "config"), "config")
		}, ""},
		{"foreign file", func(t *testing.T, dir string) {
			mkdir(t, dir)
			write(t, filepath.Join(dir, "photo.jpg"), "x")
		}, `not empty and not a repository (found "photo.jpg")`},
		{"foreign dot directory", func(t *testing.T, dir string) { mkdir(t, filepath.Join(dir, ".git")) },
			`not a repository (found ".git")`},
		{"regular file", func(t *testing.T, dir string) { write(t, dir, "x") }, "not a directory"},
		{"layout name is a file", func(t *testing.T, dir string) {
			mkdir(t, dir)
			write(t, filepath.Join(dir, "data"), "x")
		}, "data: exists and is not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a", "repo")
			tc.setup(t, dir)
			b, err := Create(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("Create: err = %v, want it to name %s and say %q", err, dir, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if b.Location() != dir {
				t.Errorf("Location() = %q, want %q", b.Location(), dir)
			}
			for _, typ := range dirTypes() {
				if fi, err := os.Stat(filepath.Join(dir, string(typ))); err != nil || !fi.IsDir() {
					t.Errorf("type directory %s: %v", typ, err)
				}
			}
			// Save of the config decides whether the repository is new.
			err = b.Save(context.Background(), backend.Handle{Type: backend.ConfigFile}, []byte("new config"))
			if existed := tc.name == "existing repository"; existed != errors.Is(err, backend.ErrExists) || (!existed && err != nil) {
				t.Fatalf("Save(config) after Create: %v", err)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	tmp := t.TempDir()
	if _, err := Open(filepath.Join(tmp, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing directory: err = %v, want fs.ErrNotExist", err)
	}
	dir := filepath.Join(tmp, "repo")
	if _, err := Create(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, backend.ErrNotExist) || !strings.Contains(err.Error(), "not a repository") {
		t.Errorf("Open without config: err = %v, want ErrNotExist saying not a repository", err)
	}
	write(t, filepath.Join(dir, "config"), "config")
	b, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if b.Location() != dir {
		t.Errorf("Location() = %q, want %q", b.Location(), dir)
	}
	write(t, filepath.Join(tmp, "file"), "x")
	if _, err := Open(filepath.Join(tmp, "file")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Open of a regular file: err = %v, want not a directory", err)
	}
}

func TestLayoutAndPermissions(t *testing.T) {
	b, dir := newRepo(t)
	ctx := context.Background()
	data := []byte("pack bytes")
	h := pack(data)
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	ph := backend.Handle{Type: backend.ParityFile, Name: h.Name}
	if err := b.Replace(ctx, ph, data); err != nil {
		t.Fatal(err)
	}
	kh := backend.Handle{Type: backend.KeyFile, Name: sum([]byte("key"))}
	if err := b.Save(ctx, kh, []byte("key")); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		".":                                   fs.ModeDir | 0o700,
		"config":                              0o600,
		"data":                                fs.ModeDir | 0o700,
		"data/" + h.Name[:2]:                  fs.ModeDir | 0o700,
		"data/" + h.Name[:2] + "/" + h.Name:   0o600,
		"parity/" + h.Name[:2]:                fs.ModeDir | 0o700,
		"parity/" + h.Name[:2] + "/" + h.Name: 0o600,
		"keys":                                fs.ModeDir | 0o700,
		"keys/" + kh.Name:                     0o600,
		"index":                               fs.ModeDir | 0o700,
		"snapshots":                           fs.ModeDir | 0o700,
		"locks":                               fs.ModeDir | 0o700,
		"parity":                              fs.ModeDir | 0o700,
	}
	got := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, mode := range want {
		if got[p] != mode {
			t.Errorf("%s: mode %v, want %v", p, got[p], mode)
		}
	}
	if len(got) != len(want) {
		t.Errorf("repository holds %d entries, want %d: %v", len(got), len(want), got)
	}
}

// TestSaveNeverRecreatesTypeDirectory: with a type directory gone (damage,
// or the disk unmounted under a mount point), Save fails instead of
// rebuilding the layout.
func TestSaveNeverRecreatesTypeDirectory(t *testing.T) {
	b, dir := newRepo(t)
	if err := os.Remove(filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	data := []byte("pack")
	h := pack(data)
	err := b.Save(context.Background(), h, data)
	if err == nil || !strings.Contains(err.Error(), h.String()) {
		t.Fatalf("Save with data/ missing: err = %v, want an error naming %s", err, h)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("data/ was recreated: %v", err)
	}
	if err := b.List(context.Background(), backend.PackFile, func(backend.FileInfo) error { return nil }); err == nil {
		t.Fatal("List with data/ missing succeeded; a damaged layout must not look like an empty one")
	}
}

func TestListForeign(t *testing.T) {
	b, dir := newRepo(t)
	ctx := context.Background()
	data := []byte("a real pack")
	h := pack(data)
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	other := sum([]byte("other")) // an id that belongs in another shard
	wrongShard := "00"
	if other[:2] == wrongShard {
		wrongShard = "01"
	}
	write(t, filepath.Join(dir, "data", "README"), "hello")
	write(t, filepath.Join(dir, "data", h.Name[:2], "notes.txt"), "n")
	write(t, filepath.Join(dir, "data", wrongShard, other), "misplaced")
	write(t, filepath.Join(dir, "data", h.Name[:2], strings.ToUpper(other)), "upper")
	mkdir(t, filepath.Join(dir, "data", "zz"))
	mkdir(t, filepath.Join(dir, "data", strings.ToUpper(h.Name[:2])))
	mkdir(t, filepath.Join(dir, "data", h.Name[:2], "sub"))
	write(t, filepath.Join(dir, "data", ".DS_Store"), "dot files are skipped")
	write(t, filepath.Join(dir, "data", h.Name[:2], ".tmp-1"), "in-flight write")
	write(t, filepath.Join(dir, "parity", "ab", "cd"), "xy")
	mkdir(t, filepath.Join(dir, "keys", "subdir"))
	write(t, filepath.Join(dir, "keys", ".tmp-2"), "in-flight write")
	write(t, filepath.Join(dir, "index", "foreign"), "abc")
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "snapshots", "link")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		typ  backend.Type
		want []string // names; directories end in '/'
	}{
		{backend.PackFile, []string{
			h.Name, "README", h.Name[:2] + "/notes.txt", wrongShard + "/" + other,
			h.Name[:2] + "/" + strings.ToUpper(other), "zz/", strings.ToUpper(h.Name[:2]) + "/",
			h.Name[:2] + "/sub/",
		}},
		{backend.ParityFile, []string{"ab/cd"}},
		{backend.KeyFile, []string{"subdir/"}},
		{backend.IndexFile, []string{"foreign"}},
		{backend.SnapshotFile, []string{"link"}},
		{backend.LockFile, nil},
		{backend.ConfigFile, []string{""}},
	}
	for _, tc := range tests {
		var got []string
		sizes := map[string]int64{}
		err := b.List(ctx, tc.typ, func(fi backend.FileInfo) error {
			got = append(got, fi.Name)
			sizes[fi.Name] = fi.Size
			return nil
		})
		if err != nil {
			t.Fatalf("List(%s): %v", tc.typ, err)
		}
		slices.Sort(got)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("List(%s):\n got %q\nwant %q", tc.typ, got, want)
		}
		if tc.typ == backend.PackFile && (sizes[h.Name] != int64(len(data)) || sizes["README"] != 5) {
			t.Errorf("List(data) sizes: %v", sizes)
		}
	}
	// A misplaced id is not loadable under its name: the layout decides.
	if _, err := b.Load(ctx, backend.Handle{Type: backend.PackFile, Name: other}, 0, 0); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Load of a pack in the wrong shard: err = %v, want ErrNotExist", err)
	}
}

// TestCrashLeavesNoPartialObject simulates the states a crash can leave: a
// temp file with part of an object (before the link) and a temp file that is
// already linked to its final name (between link and unlink). Readers must
// not see the partial object, and CleanTemp removes only stale temp files.
func TestCrashLeavesNoPartialObject(t *testing.T) {
	b, dir := newRepo(t)
	ctx := context.Background()
	full := bytes.Repeat([]byte("pack content "), 1000)
	h := pack(full)
	shard := filepath.Join(dir, "data", h.Name[:2])
	mkdir(t, shard)

	old := time.Now().Add(-2 * time.Hour)
	stale := []string{
		filepath.Join(shard, ".tmp-crashed"),     // partial pack
		filepath.Join(dir, "index", ".tmp-9999"), // partial index
		filepath.Join(dir, ".tmp-config"),        // partial config
	}
	for _, p := range stale {
		write(t, p, string(full[:len(full)/2]))
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	fresh := filepath.Join(shard, ".tmp-inflight") // a live write: recent
	write(t, fresh, "in progress")

	// Readers do not see partial objects.
	if _, err := b.Load(ctx, h, 0, 0); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Load of a pack whose write crashed: err = %v, want ErrNotExist", err)
	}
	for _, typ := range []backend.Type{backend.PackFile, backend.IndexFile} {
		if err := b.List(ctx, typ, func(fi backend.FileInfo) error {
			return fmt.Errorf("listed %q", fi.Name)
		}); err != nil {
			t.Fatalf("List(%s) with only temp files: %v", typ, err)
		}
	}
	// Temp files do not stop Create (a crashed init) or a retried Save.
	if _, err := Create(dir); err != nil {
		t.Fatalf("Create over a crashed write: %v", err)
	}
	if err := b.Save(ctx, h, full); err != nil {
		t.Fatalf("Save after a crashed write of the same object: %v", err)
	}

	// Crash between link and unlink: the temp name shares the object's inode.
	linked := filepath.Join(shard, ".tmp-linked")
	if err := os.Link(filepath.Join(shard, h.Name), linked); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(linked, old, old); err != nil {
		t.Fatal(err)
	}
	stale = append(stale, linked)

	n, err := b.CleanTemp(ctx, time.Hour)
	if err != nil || n != len(stale) {
		t.Fatalf("CleanTemp = %d, %v; want %d removed", n, err, len(stale))
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale temp file %s not removed: %v", p, err)
		}
	}
	if _, err := os.Lstat(fresh); err != nil {
		t.Errorf("recent temp file removed: %v", err)
	}
	got, err := b.Load(ctx, h, 0, 0)
	if err != nil || !bytes.Equal(got, full) {
		t.Fatalf("Load after CleanTemp: %d bytes, %v", len(got), err)
	}
	if n, err := b.CleanTemp(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("second CleanTemp = %d, %v; want 0", n, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.CleanTemp(cancelled, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("CleanTemp with a cancelled context: %v", err)
	}
	if _, err := os.Lstat(fresh); err != nil {
		t.Errorf("cancelled CleanTemp removed a file: %v", err)
	}
}

func helper(t *testing.T, mode, dir string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$", dir)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	return cmd
}

// TestKilledWriter kills a process that saves packs in a loop (SIGKILL, at
// whatever point it has reached) and checks that every listed pack is
// complete.
func TestKilledWriter(t *testing.T) {
	b, dir := newRepo(t)
	ctx := context.Background()
	cmd := helper(t, "save-forever", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	count := func() int {
		n := 0
		if err := b.List(ctx, backend.PackFile, func(backend.FileInfo) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for count() < 3 {
		select {
		case err := <-exited:
			t.Fatalf("writer exited early: %v: %s", err, stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited

	n := 0
	err := b.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		n++
		h := backend.Handle{Type: backend.PackFile, Name: fi.Name}
		data, err := b.Load(ctx, h, 0, 0)
		if err != nil {
			return err
		}
		if len(data) != 4<<20 || sum(data) != fi.Name {
			return fmt.Errorf("%s: partial or corrupt: %d bytes", h, len(data))
		}
		return nil
	})
	if err != nil || n < 3 {
		t.Fatalf("after kill: %d packs, %v", n, err)
	}
	// At most the one in-flight write is left, and CleanTemp removes it.
	if tmp := tempFiles(t, dir); len(tmp) > 1 {
		t.Fatalf("temp files after kill: %v", tmp)
	}
	if _, err := b.CleanTemp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("temp files after CleanTemp: %v", tmp)
	}
}

// TestConcurrentProcesses has several processes save one name at once:
// exactly one wins and the object is the winner's.
func TestConcurrentProcesses(t *testing.T) {
	const procs = 6
	b, dir := newRepo(t)
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmds[i] = helper(t, "save-one", dir)
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	winner := 0
	for _, cmd := range cmds {
		err := cmd.Wait()
		var exit *exec.ExitError
		switch {
		case err == nil:
			if winner != 0 {
				t.Fatalf("processes %d and %d both saved", winner, cmd.Process.Pid)
			}
			winner = cmd.Process.Pid
		case errors.As(err, &exit) && exit.ExitCode() == 3:
		default:
			t.Fatalf("process %d: %v", cmd.Process.Pid, err)
		}
	}
	if winner == 0 {
		t.Fatal("no process saved")
	}
	got, err := b.Load(context.Background(), backend.Handle{Type: backend.LockFile, Name: "contended"}, 0, 0)
	if want := bytes.Repeat([]byte(fmt.Sprintf("pid %d\n", winner)), 1<<14); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("stored object is not the winner's (pid %d): %d bytes, %v", winner, len(got), err)
	}
}

func benchmarkSave(b *testing.B, size int) {
	dir := filepath.Join(b.TempDir(), "repo")
	be, err := Create(dir)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, size)
	b.SetBytes(int64(size))
	for i := 0; b.Loop(); i++ {
		copy(data, fmt.Sprintf("object %d", i))
		if err := be.Save(context.Background(), pack(data), data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSave4KiB(b *testing.B)  { benchmarkSave(b, 4<<10) }
func BenchmarkSave16MiB(b *testing.B) { benchmarkSave(b, 16<<20) }
