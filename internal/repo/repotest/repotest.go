// Package repotest has helpers for tests of repository operations: a fresh
// repository in a temporary directory, and a comparison of two directory
// trees attribute by attribute.
package repotest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

// Password is the password of test repositories.
const Password = "correct horse battery staple"

// FastKDF keeps tests quick; production uses crypto.DefaultKDF.
var FastKDF = crypto.KDFParams{Time: 1, MemoryKiB: 19 * 1024, Threads: 1}

// Options for New.
type Options struct {
	Parity   *parity.Params
	PackSize int
}

// New creates a repository in a temporary directory and returns it with
// its directory. The cache lives in another temporary directory.
func New(t testing.TB, o Options) (*repo.Repository, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), be, []byte(Password), repo.InitOptions{
		KDF: FastKDF, Parity: o.Parity, PackSize: o.PackSize, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

// Open opens the repository at dir again (a new process, in effect).
func Open(t testing.TB, dir, password string) *repo.Repository {
	t.Helper()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), be, []byte(password), repo.OpenOptions{CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// CompareOptions says which attributes to ignore.
type CompareOptions struct {
	IgnoreOwner bool
}

// CompareDirs walks a and b and reports every entry whose type, mode,
// owner, size, mtime (ns), symlink target, xattrs, device number, content
// or hard-link structure differs, and entries present on one side only.
func CompareDirs(t testing.TB, a, b string, o CompareOptions) {
	t.Helper()
	la, lb := list(t, a), list(t, b)
	for p := range la {
		if _, ok := lb[p]; !ok {
			t.Errorf("%q: missing from restore", p)
		}
	}
	for p := range lb {
		if _, ok := la[p]; !ok {
			t.Errorf("%q: restored but not in source", p)
		}
	}
	links := map[[2]uint64]string{}
	linksB := map[[2]uint64]string{}
	var paths []string
	for p := range la {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		na, nb := la[p], lb[p]
		if nb == nil {
			continue
		}
		diff := func(what string, x, y any) { t.Errorf("%q: %s differs: source %v, restored %v", p, what, x, y) }
		if na.Type != nb.Type {
			diff("type", na.Type, nb.Type)
			continue
		}
		if na.Type != tree.TypeSymlink && na.Mode != nb.Mode {
			diff("mode", na.Mode, nb.Mode)
		}
		if !o.IgnoreOwner && (na.UID != nb.UID || na.GID != nb.GID) {
			diff("owner", [2]uint32{na.UID, na.GID}, [2]uint32{nb.UID, nb.GID})
		}
		if na.Size != nb.Size {
			diff("size", na.Size, nb.Size)
		}
		if na.Type != tree.TypeDir && !na.ModTime.Equal(nb.ModTime) {
			diff("mtime", na.ModTime, nb.ModTime)
		}
		if na.Type == tree.TypeDir && !na.ModTime.Equal(nb.ModTime) {
			diff("dir mtime", na.ModTime, nb.ModTime)
		}
		if na.Target != nb.Target {
			diff("symlink target", na.Target, nb.Target)
		}
		if na.Rdev != nb.Rdev {
			diff("device number", na.Rdev, nb.Rdev)
		}
		if xa, xb := xattrs(na), xattrs(nb); xa != xb {
			diff("xattrs", xa, xb)
		}
		if na.Links != nb.Links {
			diff("link count", na.Links, nb.Links)
		}
		if na.Type == tree.TypeFile {
			if na.Links > 1 {
				ka, kb := [2]uint64{na.Device, na.Inode}, [2]uint64{nb.Device, nb.Inode}
				fa, oka := links[ka]
				fb, okb := linksB[kb]
				if oka != okb || fa != fb {
					t.Errorf("%q: hard link structure differs (source links to %q, restore to %q)", p, fa, fb)
				}
				if !oka {
					links[ka], linksB[kb] = p, p
				}
			}
			if !sameFile(t, filepath.Join(a, p), filepath.Join(b, p)) {
				t.Errorf("%q: content differs", p)
			}
		}
	}
}

func xattrs(n *tree.Node) string {
	var s []string
	for _, x := range n.Xattrs {
		if strings.HasPrefix(x.Name, "security.") && x.Name != "security.capability" {
			continue
		}
		s = append(s, x.Name+"="+string(x.Value))
	}
	sort.Strings(s)
	return strings.Join(s, ";")
}

func list(t testing.TB, root string) map[string]*tree.Node {
	out := map[string]*tree.Node{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		n, err := tree.NodeFromPath(p, fi.Name(), fi, tree.CaptureOptions{})
		if err != nil && !tree.IsWarning(err) {
			return err
		}
		out[rel] = &n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFile(t testing.TB, a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	x, y := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		n, errA := io.ReadFull(fa, x)
		m, errB := io.ReadFull(fb, y)
		if n != m || !bytes.Equal(x[:n], y[:m]) {
			return false
		}
		if errA != nil || errB != nil {
			return (errA == io.EOF || errA == io.ErrUnexpectedEOF) && (errB == io.EOF || errB == io.ErrUnexpectedEOF)
		}
	}
}
