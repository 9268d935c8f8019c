package restorer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
	"golang.org/x/sys/unix"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, mode))
	must(t, os.Chmod(p, mode))
}

// buildSource makes every kind of entry the issue lists.
func buildSource(t *testing.T, src string, smallFiles int) {
	root := os.Geteuid() == 0
	write(t, filepath.Join(src, "regular.txt"), []byte("hello\n"), 0o644)
	write(t, filepath.Join(src, "empty"), nil, 0o600)
	must(t, os.MkdirAll(filepath.Join(src, "empty-dir"), 0o750))
	// Empty directories share one subtree (the empty tree): the planner
	// meets the same tree id several times.
	for _, d := range []string{"empty-dir2", "nested/empty-dir3"} {
		must(t, os.MkdirAll(filepath.Join(src, d), 0o755))
	}
	big := make([]byte, 3<<20+12345)
	for i := range big {
		big[i] = byte(i*7 + i/4096)
	}
	write(t, filepath.Join(src, "big.bin"), big, 0o640)
	write(t, filepath.Join(src, "setuid"), []byte("#!/bin/sh\n"), 0o4755)
	write(t, filepath.Join(src, "setgid-dir", "f"), []byte("x"), 0o644)
	must(t, os.Chmod(filepath.Join(src, "setgid-dir"), 0o2775))
	must(t, os.MkdirAll(filepath.Join(src, "sticky"), 0o755))
	must(t, os.Chmod(filepath.Join(src, "sticky"), 0o1777))
	must(t, os.Symlink("regular.txt", filepath.Join(src, "link")))
	must(t, os.Symlink("/nonexistent/target", filepath.Join(src, "dangling")))
	must(t, syscall.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	write(t, filepath.Join(src, "hard1"), []byte("linked content"), 0o644)
	must(t, os.Link(filepath.Join(src, "hard1"), filepath.Join(src, "hard2")))
	for _, name := range []string{"with space", "new\nline", "-leading-dash", "\xff\xfe not utf8", "quote\"and\\back"} {
		write(t, filepath.Join(src, "names", name), []byte(name), 0o644)
	}
	write(t, filepath.Join(src, "xattr"), []byte("x"), 0o644)
	if err := unix.Lsetxattr(filepath.Join(src, "xattr"), "user.bulwark", []byte("value\x00bin"), 0); err != nil {
		t.Logf("no user xattrs on this file system: %v", err)
	}
	if root {
		must(t, unix.Mknod(filepath.Join(src, "null-dev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		write(t, filepath.Join(src, "owned"), []byte("owned"), 0o640)
		must(t, os.Lchown(filepath.Join(src, "owned"), 1234, 5678))
		must(t, os.Lchown(filepath.Join(src, "link"), 4321, 8765))
	}
	// Sparse: 5 GiB apparent, data at 0 and at 4.5 GiB.
	sp, err := os.Create(filepath.Join(src, "sparse"))
	must(t, err)
	_, err = sp.WriteAt([]byte("start of sparse file"), 0)
	must(t, err)
	_, err = sp.WriteAt([]byte("data at 4.5 GiB"), 9<<29)
	must(t, err)
	must(t, sp.Truncate(5<<30))
	must(t, sp.Close())
	// A hole, then one chunk that ends the file: one chunk, not at offset 0.
	sp, err = os.Create(filepath.Join(src, "hole-then-data"))
	must(t, err)
	_, err = sp.WriteAt([]byte("after a 20 MiB hole"), 20<<20)
	must(t, err)
	must(t, sp.Close())
	for i := 0; i < smallFiles; i++ {
		write(t, filepath.Join(src, "many", fmt.Sprintf("d%03d", i/1000), fmt.Sprintf("f%05d", i)), []byte(fmt.Sprintf("small file %d\n", i)), 0o644)
	}
	// Times last, deepest first, so creating children does not move them.
	mt := time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.UTC)
	var paths []string
	must(t, filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW))
		mt = mt.Add(time.Second + 7)
	}
}

func TestBackupRestoreEveryAttribute(t *testing.T) {
	small := 100000
	switch {
	case testing.Short():
		small = 2000
	case raceEnabled:
		small = 10000
	}
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	buildSource(t, src, small)
	r, dir := repotest.New(t, repotest.Options{})
	res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Warn: func(p string, err error) { t.Errorf("warning %s: %v", p, err) }})
	must(t, err)
	if res.Summary.FilesNew < int64(small) {
		t.Fatalf("summary: %+v", res.Summary)
	}

	r2 := repotest.Open(t, dir, repotest.Password)
	snap, err := r2.FindSnapshot(ctx, "latest", repoFilter())
	must(t, err)
	dst := t.TempDir()
	st, err := restorer.Restore(ctx, r2, snap, dst, restorer.Options{Verify: true, Warn: func(p string, err error) { t.Errorf("warning %s: %v", p, err) }})
	must(t, err)
	if st.Verified != st.Files {
		t.Fatalf("verified %d of %d files", st.Verified, st.Files)
	}
	repotest.CompareDirs(t, src, filepath.Join(dst, src), repotest.CompareOptions{IgnoreOwner: os.Geteuid() != 0})

	// The sparse file stayed sparse.
	var s unix.Stat_t
	must(t, unix.Stat(filepath.Join(dst, src, "sparse"), &s))
	if s.Blocks*512 > 4<<20 {
		t.Errorf("restored sparse file uses %d bytes on disk", s.Blocks*512)
	}
}

func repoFilter() repo.Filter { return repo.Filter{} }

// TestRestoreOverPlantedLinks: restoring into a directory where an attacker
// put a symlink and a hard link at the names of files in the snapshot
// replaces those entries and never writes through them.
func TestRestoreOverPlantedLinks(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "a"), []byte("snapshot a"), 0o644)
	write(t, filepath.Join(src, "b"), []byte("snapshot b"), 0o644)
	r, _ := repotest.New(t, repotest.Options{})
	res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{})
	must(t, err)

	outside := t.TempDir()
	victim1, victim2 := filepath.Join(outside, "v1"), filepath.Join(outside, "v2")
	write(t, victim1, []byte("precious 1"), 0o644)
	write(t, victim2, []byte("precious 2"), 0o644)
	dst := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dst, src), 0o755))
	must(t, os.Symlink(victim1, filepath.Join(dst, src, "a")))
	must(t, os.Link(victim2, filepath.Join(dst, src, "b")))

	_, err = restorer.Restore(ctx, r, res.Snapshot, dst, restorer.Options{Verify: true})
	must(t, err)
	for p, want := range map[string]string{victim1: "precious 1", victim2: "precious 2",
		filepath.Join(dst, src, "a"): "snapshot a", filepath.Join(dst, src, "b"): "snapshot b"} {
		got, err := os.ReadFile(p)
		must(t, err)
		if string(got) != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
}

// TestRestoreOverPlantedDirLink: a symlink planted in the target where the
// snapshot has a directory is never followed. Directories are created on
// first use by the workers, so this is the path they take too.
func TestRestoreOverPlantedDirLink(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "d", "one-piece"), []byte("small"), 0o644)
	write(t, filepath.Join(src, "e", "empty"), nil, 0o644)
	r, _ := repotest.New(t, repotest.Options{})
	res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{})
	must(t, err)

	for _, sub := range []string{"d", "e"} {
		t.Run(sub, func(t *testing.T) {
			outside := t.TempDir()
			dst := t.TempDir()
			must(t, os.MkdirAll(filepath.Join(dst, src), 0o755))
			must(t, os.Symlink(outside, filepath.Join(dst, src, sub)))
			_, err := restorer.Restore(ctx, r, res.Snapshot, dst, restorer.Options{})
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dst, src, sub)) {
				t.Fatalf("restore over a planted directory symlink: %v, want an error naming it", err)
			}
			left, err := os.ReadDir(outside)
			must(t, err)
			if len(left) != 0 {
				t.Fatalf("restore wrote through the planted symlink: %v", left)
			}
		})
	}
}
