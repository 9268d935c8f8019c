package checker

// Names, keys, index files, locks and temporary files: the checks that read
// small objects one by one.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
)

// listedTypes are the types whose objects are named by a 64-hex id.
var listedTypes = []backend.Type{backend.KeyFile, backend.PackFile, backend.IndexFile,
	backend.SnapshotFile, backend.LockFile, backend.ParityFile}

// list lists every type, records the valid names and reports foreign ones.
func (c *checker) list(ctx context.Context) {
	c.prog.start("listing", len(listedTypes))
	for _, t := range listedTypes {
		names := map[string]int64{}
		err := c.be.List(ctx, t, func(fi backend.FileInfo) error {
			if backend.IsID(fi.Name) {
				names[fi.Name] = fi.Size
				return nil
			}
			c.errorf(string(t)+"/"+fi.Name, "%s", foreignReason(t, fi.Name))
			return nil
		})
		if err != nil && ctx.Err() == nil {
			c.errorf(string(t)+"/", "cannot list: %v", err)
		}
		c.listed[t] = names
		c.prog.Done.Add(1)
	}
	c.rep.Stats.Packs = len(c.listed[backend.PackFile])
	c.checkTempFiles()
}

// foreignReason explains why name is not an object of type t.
func foreignReason(t backend.Type, name string) string {
	const tail = "; check never removes anything: move it out of the repository"
	switch {
	case strings.HasSuffix(name, "/"):
		return "foreign directory: not part of the repository format" + tail
	case t.Sharded() && strings.Contains(name, "/") && backend.IsID(path.Base(name)):
		id := path.Base(name)
		return fmt.Sprintf("misplaced object: in shard directory %s/, belongs in %s/ (readers do not find it there)", path.Dir(name), id[:2])
	}
	return fmt.Sprintf("foreign file: not a valid name for %s objects (64 lower-case hex characters)%s", t, tail)
}

// checkTempFiles reports temporary files of interrupted writes; only the
// local backend has them, and the Backend interface hides them.
func (c *checker) checkTempFiles() {
	lb, ok := c.be.(*local.Backend)
	if !ok {
		return
	}
	root := lb.Location()
	dirs := []string{""}
	for _, t := range listedTypes {
		dirs = append(dirs, string(t))
		if !t.Sharded() {
			continue
		}
		entries, _ := os.ReadDir(filepath.Join(root, string(t)))
		for _, e := range entries {
			if e.IsDir() && len(e.Name()) == 2 && !strings.HasPrefix(e.Name(), ".") {
				dirs = append(dirs, string(t)+"/"+e.Name())
			}
		}
	}
	now := c.o.Now()
	for _, d := range dirs {
		entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(d)))
		if err != nil {
			continue // reported by list, or vanished
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".tmp-") {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if age := now.Sub(fi.ModTime()); age >= StaleTemp {
				c.warnf(path.Join(d, e.Name()), "temporary file of a write interrupted %s ago (%d bytes): harmless, readers ignore it; safe to delete",
					age.Round(time.Minute), fi.Size())
			}
		}
	}
}

// checkKeys verifies every key file's name and clear part.
func (c *checker) checkKeys(ctx context.Context) {
	names := sortedNames(c.listed[backend.KeyFile])
	c.prog.start("keys", len(names))
	c.rep.Stats.Keys = len(names)
	for _, name := range names {
		h := backend.Handle{Type: backend.KeyFile, Name: name}
		data, err := c.be.Load(ctx, h, 0, 0)
		switch {
		case err != nil:
			c.errorf(h.String(), "cannot read: %v", err)
		case hexSum(data) != name:
			c.errorf(h.String(), "content does not match its name (corrupted: SHA-256 is %s)", hexSum(data))
		default:
			if _, err := crypto.ParseKeyFile(data); err != nil {
				c.errorf(h.String(), "%v", err)
			}
		}
		c.prog.Done.Add(1)
	}
}

// loadIndex reads every index file and merges those no other supersedes.
func (c *checker) loadIndex(ctx context.Context) {
	c.prog.start("index", len(c.listed[backend.IndexFile]))
	files, err := c.r.LoadIndexFiles(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.errorf("index/", "cannot read the index: %v", err)
		}
		return
	}
	c.rep.Stats.IndexFiles = len(files)
	c.prog.Done.Store(int64(len(files)))
	super := map[repo.ID]bool{}
	for _, f := range files {
		c.indexes = append(c.indexes, repo.Hex(f.Name))
		if f.Err != nil {
			c.badIndex = true
			c.errorf(object(backend.IndexFile, f.Name), "%s (`bulwark repo repair` rebuilds the index from the packs)",
				strings.TrimPrefix(f.Err.Error(), object(backend.IndexFile, f.Name)+": "))
			continue
		}
		if !f.File.Signed {
			c.rep.Stats.UnsignedIndexFiles++
		}
		for _, s := range f.File.Supersedes {
			super[s] = true
		}
	}
	slices.Sort(c.indexes)
	// Merge in name order so that the location chosen for a duplicated
	// blob does not depend on listing order.
	slices.SortFunc(files, func(a, b repo.IndexFile) int { return strings.Compare(repo.Hex(a.Name), repo.Hex(b.Name)) })
	for _, f := range files {
		if f.Err != nil || super[f.Name] {
			continue
		}
		for _, p := range f.File.Packs {
			c.addPack(f.Name, p.ID, p.Blobs)
		}
		c.idx.AddFile(f.Name, f.File, true)
	}
	c.rep.Stats.PacksIndexed = len(c.packs)
}

// checkLocks reports unreadable and stale locks.
func (c *checker) checkLocks(ctx context.Context) {
	c.prog.start("locks", len(c.listed[backend.LockFile]))
	locks, bad, err := c.r.ListLocks(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.errorf("locks/", "cannot list: %v", err)
		}
		return
	}
	for name, err := range bad {
		if !backend.IsID(name) {
			continue // foreign, reported by list
		}
		c.warnf("locks/"+name, "unreadable lock (%v): it is ignored; `bulwark repo unlock` does not remove it, delete it by hand", err)
	}
	now := c.o.Now()
	for name, li := range locks {
		if !li.Stale(now) {
			continue
		}
		kind := "shared"
		if li.Exclusive {
			kind = "exclusive"
		}
		c.warnf("locks/"+name, "stale %s lock of PID %d on %s since %s: `bulwark repo unlock` removes it",
			kind, li.PID, li.Hostname, li.Time.Local().Format(time.DateTime))
	}
}

// checkIndexUnchanged warns when index files came or went during the
// check: a concurrent backup or prune may explain missing packs or blobs.
func (c *checker) checkIndexUnchanged(ctx context.Context) {
	var now []string
	err := c.be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		if backend.IsID(fi.Name) {
			now = append(now, fi.Name)
		}
		return nil
	})
	if err != nil {
		return
	}
	slices.Sort(now)
	if !slices.Equal(now, c.indexes) {
		c.warnf("index/", "index files changed while the check ran (a concurrent backup, prune or repair): problems above may be a race; run the check again")
	}
}

func sortedNames(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func hexSum(data []byte) string {
	s := sha256.Sum256(data)
	return repo.Hex(s)
}

// isNotExist reports a missing object.
func isNotExist(err error) bool { return errors.Is(err, backend.ErrNotExist) }
