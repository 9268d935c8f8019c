package checker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// The base repositories are built once per test binary (two backups of a
// generated tree) and copied for each test.
var (
	baseDir   string
	baseOnce  = map[string]*sync.Once{"plain": {}, "parity": {}}
	baseRepos = map[string]string{}
	baseErr   = map[string]error{}
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "checker-test")
	if err != nil {
		panic(err)
	}
	baseDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// testParity is the parity scheme of the "parity" base repository.
var testParity = &parity.Params{DataShards: 8, ParityShards: 2}

// base returns the directory of a base repository ("plain" or "parity"),
// which tests must not modify; use copyRepo.
func base(t testing.TB, kind string) string {
	t.Helper()
	baseOnce[kind].Do(func() {
		baseRepos[kind], baseErr[kind] = buildBase(kind)
	})
	if baseErr[kind] != nil {
		t.Fatalf("building the %s base repository: %v", kind, baseErr[kind])
	}
	return baseRepos[kind]
}

func buildBase(kind string) (string, error) {
	ctx := context.Background()
	src := filepath.Join(baseDir, kind+"-src")
	if err := writeSourceTree(src, 1); err != nil {
		return "", err
	}
	dir := filepath.Join(baseDir, kind)
	be, err := local.Create(dir)
	if err != nil {
		return "", err
	}
	o := repo.InitOptions{KDF: repotest.FastKDF, PackSize: 1 << 20, CacheDir: "-"}
	if kind == "parity" {
		o.Parity = testParity
	}
	r, err := repo.Init(ctx, be, []byte(repotest.Password), o)
	if err != nil {
		return "", err
	}
	if _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Host: "test"}); err != nil {
		return "", err
	}
	// Change a tenth of the files and add some: the second snapshot shares
	// most trees and chunks with the first and adds packs of its own.
	if err := writeSourceTree(src, 2); err != nil {
		return "", err
	}
	if _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Host: "test", NoParent: true}); err != nil {
		return "", err
	}
	return dir, r.Close()
}

// writeSourceTree writes a tree of about 330 files in 11 directories,
// text and random, among them one of 3 MiB, and with gen 2 changes every
// tenth file and adds one directory.
func writeSourceTree(dir string, gen int) error {
	rnd := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the quick brown fox jumps over a lazy dog while backups run every night")
	ndirs := 10
	if gen > 1 {
		ndirs = 11
	}
	for d := range ndirs {
		sub := filepath.Join(dir, fmt.Sprintf("dir%02d", d), "sub")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		for f := range 30 {
			var data []byte
			n := rnd.IntN(24 << 10)
			if f%3 == 0 {
				data = make([]byte, n)
				for i := range data {
					data[i] = byte(rnd.Uint32())
				}
			} else {
				var b strings.Builder
				for b.Len() < n {
					b.WriteString(words[rnd.IntN(len(words))])
					b.WriteByte(' ')
				}
				data = []byte(b.String())
			}
			if gen > 1 && f%10 == 0 {
				data = append(data, fmt.Sprintf("changed in generation %d\n", gen)...)
			}
			p := filepath.Join(dir, fmt.Sprintf("dir%02d", d), fmt.Sprintf("file%02d.txt", f))
			if f%2 == 1 {
				p = filepath.Join(sub, fmt.Sprintf("file%02d.txt", f))
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return err
			}
		}
	}
	big := make([]byte, 3<<20)
	for i := 0; i < len(big); i += 8 {
		v := rnd.Uint64()
		for k := 0; k < 8; k++ {
			big[i+k] = byte(v >> (8 * k))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644); err != nil {
		return err
	}
	if err := os.Symlink("big.bin", filepath.Join(dir, "link")); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

// copyRepo copies a repository directory (regular files and directories,
// nothing else) into a new temporary directory.
func copyRepo(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "repo")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.Mkdir(target, 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// openRepo opens dir with password without loading the index (which may
// be damaged) and without a cache.
func openRepo(t testing.TB, dir, password string) *repo.Repository {
	t.Helper()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), be, []byte(password), repo.OpenOptions{CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func check(t testing.TB, r *repo.Repository, o Options) *Report {
	t.Helper()
	rep, err := Check(context.Background(), r, o)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if rep.OK != (len(rep.Errors) == 0) {
		t.Fatalf("OK = %v with %d errors", rep.OK, len(rep.Errors))
	}
	return rep
}

// layout describes a repository's objects, from its files and index.
type layout struct {
	dir       string
	dataPacks []string // hex ids of packs holding data blobs
	treePacks []string // hex ids of packs holding tree blobs
	indexes   []string
	snapshots []string
	parity    []string
	keys      []string
	packSizes map[string]int64
	idx       *index.Index
	files     []repo.IndexFile
}

func readLayout(t testing.TB, dir string) *layout {
	t.Helper()
	r := openRepo(t, dir, repotest.Password)
	ctx := context.Background()
	files, err := r.LoadIndexFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l := &layout{dir: dir, packSizes: map[string]int64{}, idx: index.New(), files: files}
	for _, f := range files {
		if f.Err != nil {
			t.Fatalf("base repository: %v", f.Err)
		}
		l.idx.AddFile(f.Name, f.File, true)
		for _, p := range f.File.Packs {
			if len(p.Blobs) > 0 && p.Blobs[0].Type == index.TreeBlob {
				l.treePacks = append(l.treePacks, repo.Hex(p.ID))
			} else {
				l.dataPacks = append(l.dataPacks, repo.Hex(p.ID))
			}
		}
	}
	list := func(typ backend.Type) []string {
		var out []string
		if err := r.Backend().List(ctx, typ, func(fi backend.FileInfo) error {
			out = append(out, fi.Name)
			if typ == backend.PackFile {
				l.packSizes[fi.Name] = fi.Size
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	l.indexes = list(backend.IndexFile)
	l.snapshots = list(backend.SnapshotFile)
	l.parity = list(backend.ParityFile)
	l.keys = list(backend.KeyFile)
	list(backend.PackFile)
	slices.Sort(l.dataPacks)
	slices.Sort(l.treePacks)
	return l
}

// path returns the file of an object in the local layout.
func (l *layout) path(t backend.Type, name string) string {
	if t.Sharded() {
		return filepath.Join(l.dir, string(t), name[:2], name)
	}
	return filepath.Join(l.dir, string(t), name)
}

// flipBit flips bit bit of file p in place.
func flipBit(t testing.TB, p string, bit int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, bit/8); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1 << (bit % 8)
	if _, err := f.WriteAt(b, bit/8); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// digest summarises every entry under dir: path, type, size, mode, content
// hash and, withTimes, mtime.
func digest(t testing.TB, dir string, withTimes bool) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %v %d\n", rel, fi.Mode(), fi.Size())
		if withTimes {
			fmt.Fprintf(h, "%d\n", fi.ModTime().UnixNano())
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(data)
			h.Write(s[:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// match is an expected problem: its object, and a substring of its
// message.
type match struct{ object, text string }

func hasProblem(ps []Problem, m match) bool {
	for _, p := range ps {
		if p.Object == m.object && strings.Contains(p.Message, m.text) {
			return true
		}
	}
	return false
}

func dump(rep *Report) string {
	var b strings.Builder
	for _, p := range rep.Errors {
		fmt.Fprintf(&b, "  error: %s\n", p)
	}
	for _, p := range rep.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", p)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(&b, "  skipped: %s\n", s)
	}
	return b.String()
}

// repoKeyMeta is the metadata of test keys (no user lookups).
func repoKeyMeta() crypto.KeyFile { return crypto.KeyFile{Host: "test", Username: "test"} }

// old sets a file's times an hour and a half in the past.
func old(t testing.TB, p string) {
	t.Helper()
	ts := time.Now().Add(-90 * time.Minute)
	if err := os.Chtimes(p, ts, ts); err != nil {
		t.Fatal(err)
	}
}
