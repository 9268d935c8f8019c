package archiver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, 0o644))
}

// paths lists every path in a snapshot.
func paths(t *testing.T, r *repo.Repository, id repo.ID, dir string, out map[string]*tree.Node) {
	tr, err := r.LoadTree(ctx, id)
	must(t, err)
	for i := range tr.Nodes {
		n := &tr.Nodes[i]
		out[dir+n.Name] = n
		if n.Type == tree.TypeDir {
			paths(t, r, repo.ID(*n.Subtree), dir+n.Name+"/", out)
		}
	}
}

func TestExcludes(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	for _, p := range []string{"keep.txt", "a.tmp", "sub/b.tmp", "sub/keep", "cache/x", "node_modules/m/index.js"} {
		write(t, filepath.Join(src, p), []byte(p))
	}
	r, _ := repotest.New(t, repotest.Options{})
	res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Excludes: []string{"*.tmp", "node_modules", src + "/cache"}})
	must(t, err)
	got := map[string]*tree.Node{}
	paths(t, r, res.Snapshot.Tree, "/", got)
	for _, p := range []string{"keep.txt", "sub/keep"} {
		if got[src+"/"+p] == nil {
			t.Errorf("%s missing", p)
		}
	}
	for _, p := range []string{"a.tmp", "sub/b.tmp", "cache", "node_modules"} {
		if got[src+"/"+p] != nil {
			t.Errorf("%s not excluded", p)
		}
	}
	if _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Excludes: []string{"[bad"}}); err == nil || !strings.Contains(err.Error(), "[bad") {
		t.Fatalf("bad pattern: %v", err)
	}
}

// TestLargeFileOrder: the chunks of a large file are saved in parallel but
// recorded in file order, and an unchanged re-run reuses them unread.
func TestLargeFileOrder(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	data := make([]byte, 24<<20)
	rnd := rand.New(rand.NewPCG(7, 8))
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	write(t, filepath.Join(src, "big"), data)
	r, _ := repotest.New(t, repotest.Options{})
	res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{})
	must(t, err)
	got := map[string]*tree.Node{}
	paths(t, r, res.Snapshot.Tree, "/", got)
	n := got[src+"/big"]
	if n == nil || len(n.Content) < 10 {
		t.Fatalf("big: %+v", n)
	}
	var back []byte
	for _, c := range n.Content {
		b, err := r.LoadBlob(ctx, repo.DataBlob, repo.ID(c.ID), nil)
		must(t, err)
		back = append(back, b...)
	}
	if string(back) != string(data) {
		t.Fatal("chunks out of order")
	}
	res2, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{})
	must(t, err)
	if res2.Summary.FilesUnmodified != 1 || res2.Summary.BytesAdded > 64<<10 {
		t.Fatalf("unchanged re-run: %+v", res2.Summary)
	}
}

func TestCleanPaths(t *testing.T) {
	got, err := archiver.CleanPaths([]string{"/b/c", "/a", "/b", "/a/x", "/ab"})
	must(t, err)
	if strings.Join(got, " ") != "/a /ab /b" {
		t.Fatalf("CleanPaths: %v", got)
	}
	if _, err := archiver.CleanPaths([]string{""}); err == nil {
		t.Fatal("empty path accepted")
	}
}

func TestBackupReaderName(t *testing.T) {
	r, _ := repotest.New(t, repotest.Options{})
	for _, name := range []string{"", "a/b", ".", ".."} {
		if _, err := archiver.BackupReader(ctx, r, strings.NewReader("x"), name, archiver.Options{}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}

func TestMissingPath(t *testing.T) {
	r, _ := repotest.New(t, repotest.Options{})
	if _, err := archiver.Backup(ctx, r, []string{"/nonexistent/path"}, archiver.Options{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/path") {
		t.Fatalf("missing path: %v", err)
	}
}

// TestUnreadableFileWarns: a file that cannot be read is reported and left
// out; the rest is saved.
func TestUnreadableFileWarns(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "ok"), []byte("ok"))
	write(t, filepath.Join(src, "secret"), []byte("secret"))
	must(t, os.Chmod(filepath.Join(src, "secret"), 0))
	r, _ := repotest.New(t, repotest.Options{})
	var warned []string
	res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Warn: func(p string, err error) { warned = append(warned, p) }})
	must(t, err)
	if res.Warnings != 1 || len(warned) != 1 || !strings.HasSuffix(warned[0], "secret") {
		t.Fatalf("warnings: %d %v", res.Warnings, warned)
	}
}

// TestManyLargeFiles: workers move on while the savers still hold a large
// file's chunks, so several large files are finished out of order, by
// goroutines, between small ones; each must still get its own chunks, in
// order, and the summary must count every file once.
func TestManyLargeFiles(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	rnd := rand.New(rand.NewPCG(9, 10))
	want := map[string][]byte{}
	for i := range 12 {
		data := make([]byte, 2<<20+rnd.IntN(2<<20))
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		p := filepath.Join(src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("big%02d", i))
		write(t, p, data)
		want[p] = data
		for k := range 5 {
			small := []byte(fmt.Sprintf("small file %d of big file %d\n", k, i))
			p := filepath.Join(src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("big%02d-small%d", i, k))
			write(t, p, small)
			want[p] = small
		}
	}
	r, _ := repotest.New(t, repotest.Options{})
	res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Workers: 2})
	must(t, err)
	if s := res.Summary; s.FilesNew != int64(len(want)) || s.FilesChanged != 0 || s.FilesUnmodified != 0 {
		t.Errorf("summary: %d new, %d changed, %d unmodified; want %d new", s.FilesNew, s.FilesChanged, s.FilesUnmodified, len(want))
	}
	got := map[string]*tree.Node{}
	paths(t, r, res.Snapshot.Tree, "/", got)
	for p, data := range want {
		n := got[p]
		if n == nil {
			t.Errorf("%s missing from the snapshot", p)
			continue
		}
		var back []byte
		for _, c := range n.Content {
			b, err := r.LoadBlob(ctx, repo.DataBlob, repo.ID(c.ID), nil)
			must(t, err)
			back = append(back, b...)
		}
		if n.Size != uint64(len(data)) || !bytes.Equal(back, data) {
			t.Errorf("%s: snapshot has %d bytes (size %d) that differ from the %d backed up", p, len(back), n.Size, len(data))
		}
	}
}

// TestCancelWithLargeFiles: a cancelled backup returns only once the
// goroutines finishing large files are done, so none of them reports a
// failure or a warning after Backup has returned (the race detector sees
// the first; the Warn callback the second).
func TestCancelWithLargeFiles(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	rnd := rand.New(rand.NewPCG(11, 12))
	for i := range 1000 {
		write(t, filepath.Join(src, "a", fmt.Sprintf("small%04d", i)), []byte(fmt.Sprint("small ", i)))
	}
	for i := range 12 {
		data := make([]byte, 2<<20)
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		write(t, filepath.Join(src, fmt.Sprintf("b%d", i%4), fmt.Sprintf("big%02d", i)), data)
	}
	for _, delay := range []time.Duration{2 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond} {
		r, _ := repotest.New(t, repotest.Options{})
		var returned, late atomic.Bool
		cctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(delay, cancel)
		_, err := archiver.Backup(cctx, r, []string{src}, archiver.Options{Workers: 3,
			Warn: func(path string, err error) {
				if returned.Load() {
					late.Store(true)
				}
			}})
		returned.Store(true)
		timer.Stop()
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %v: err = %v, want context.Canceled", delay, err)
		}
		time.Sleep(20 * time.Millisecond) // a straggler would report now
		if late.Load() {
			t.Errorf("cancelled after %v: a warning came after Backup returned", delay)
		}
	}
}

// TestRerunReusesParentTrees: a re-run keeps the parent's tree of every
// directory whose entries are all unchanged, and only those: a changed
// file, a changed directory mode and a newly excluded file each give new
// trees up to the root.
func TestRerunReusesParentTrees(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	for _, p := range []string{"top", "a/x", "a/y", "b/c/f", "b/g", "d/h"} {
		write(t, filepath.Join(src, p), []byte(p))
	}
	r, _ := repotest.New(t, repotest.Options{})
	backup := func(o archiver.Options) map[string]*tree.Node {
		t.Helper()
		res, err := archiver.Backup(ctx, r, []string{src}, o)
		must(t, err)
		got := map[string]*tree.Node{}
		paths(t, r, res.Snapshot.Tree, "/", got)
		return got
	}
	// "" is src's own listing. (Not the snapshot's root: that holds the
	// metadata of src's ancestors, /tmp among them, which other tests
	// change at any time.)
	sub := func(m map[string]*tree.Node, p string) tree.ID {
		t.Helper()
		n := m[src+"/"+p]
		if p == "" {
			n = m[src]
		}
		if n == nil || n.Subtree == nil {
			t.Fatalf("%s: no directory in the snapshot", p)
		}
		return *n.Subtree
	}
	check := func(step string, before, after map[string]*tree.Node, changed ...string) {
		t.Helper()
		for _, p := range []string{"", "a", "b", "b/c", "d"} {
			want := !slices.Contains(changed, p)
			if same := sub(before, p) == sub(after, p); same != want {
				t.Errorf("%s: tree of %q kept %v, want %v", step, p, same, want)
			}
		}
	}
	s1 := backup(archiver.Options{})
	s2 := backup(archiver.Options{})
	check("unchanged", s1, s2)

	write(t, filepath.Join(src, "b/c/f"), []byte("changed content"))
	s3 := backup(archiver.Options{})
	check("changed file", s2, s3, "", "b", "b/c")
	if string(s3[src+"/b/c/f"].Content[0].ID[:]) == string(s2[src+"/b/c/f"].Content[0].ID[:]) {
		t.Fatal("changed file kept its content")
	}

	must(t, os.Chmod(filepath.Join(src, "d"), 0o700))
	s4 := backup(archiver.Options{})
	check("directory mode", s3, s4, "") // d's own listing is the same; its node, in src's, is not
	if s4[src+"/d"].Mode != 0o700 {
		t.Fatalf("directory mode: %o", s4[src+"/d"].Mode)
	}

	s5 := backup(archiver.Options{Excludes: []string{"y"}})
	check("new exclude", s4, s5, "", "a")
	if s5[src+"/a/y"] != nil || s5[src+"/a/x"] == nil {
		t.Fatal("exclude of a/y not applied")
	}
}
