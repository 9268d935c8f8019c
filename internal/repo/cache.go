package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Cache is the client-side cache (docs/repository-format.md, "Local
// cache"): the ids of index files this client wrote, which it trusts for
// deduplication, and its last snapshot per set of paths (with the trees,
// for a write-only key), so that it has a parent. A nil *Cache is valid and
// caches nothing.
type Cache struct {
	dir string
	mu  sync.Mutex
}

// DefaultCacheDir is $XDG_CACHE_HOME/bulwark or ~/.cache/bulwark.
func DefaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "bulwark")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "bulwark")
	}
	return ""
}

func openCache(base, repoID string) *Cache {
	if base == "-" {
		return nil
	}
	if base == "" {
		base = DefaultCacheDir()
	}
	if base == "" {
		return nil
	}
	dir := filepath.Join(base, repoID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil
	}
	return &Cache{dir: dir}
}

func (c *Cache) addOwnIndex(id ID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(c.dir, "own-indexes"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	_, _ = f.WriteString(hex.EncodeToString(id[:]) + "\n")
	_ = f.Sync()
	_ = f.Close()
}

func (c *Cache) ownIndexes() map[ID]bool {
	out := map[ID]bool{}
	if c == nil {
		return out
	}
	data, err := os.ReadFile(filepath.Join(c.dir, "own-indexes"))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		if id, err := ParseID(line); err == nil {
			out[id] = true
		}
	}
	return out
}

// parentRecord is what the cache remembers of a client's last snapshot of
// a set of paths, so a write-only key (which cannot list snapshots or read
// trees) still gets a parent: the snapshot and, for write-only keys, every
// tree of it.
type parentRecord struct {
	ID    string   `json:"id"`
	Tree  string   `json:"tree"`
	Time  string   `json:"time"`
	Trees [][]byte `json:"trees,omitempty"`
}

func parentKey(host string, paths []string) string {
	h := sha256.New()
	h.Write([]byte(host))
	for _, p := range paths {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// RememberParent records s as the latest snapshot of host and paths.
func (r *Repository) RememberParent(host string, paths []string, s *Snapshot) {
	c := r.cache
	if c == nil {
		return
	}
	rec := parentRecord{ID: Hex(s.ID), Tree: Hex(s.Tree), Time: s.Time.Format(time.RFC3339Nano)}
	r.treesMu.Lock()
	for id := range r.savedTrees {
		rec.Trees = append(rec.Trees, r.sessionTrees[id])
	}
	r.treesMu.Unlock()
	b, _ := json.Marshal(rec)
	sealed, err := r.sec.SealShared(cacheTreeAAD, b)
	if err != nil {
		return
	}
	_ = os.MkdirAll(filepath.Join(c.dir, "parents"), 0o700)
	p := filepath.Join(c.dir, "parents", parentKey(host, paths))
	if os.WriteFile(p+".tmp", sealed, 0o600) == nil {
		_ = os.Rename(p+".tmp", p)
	}
}

// FindParent returns the latest snapshot of host and paths: from the
// repository with a full key, else from the local cache. Nil when none.
func (r *Repository) FindParent(ctx context.Context, host string, paths []string) *Snapshot {
	if r.CanRead() {
		snaps, _, err := r.Snapshots(ctx)
		if err == nil {
			f := Filter{Hosts: []string{host}, Paths: paths}
			for i := len(snaps) - 1; i >= 0; i-- {
				if f.Match(snaps[i]) {
					return snaps[i]
				}
			}
			return nil
		}
	}
	if r.cache == nil {
		return nil
	}
	sealed, err := os.ReadFile(filepath.Join(r.cache.dir, "parents", parentKey(host, paths)))
	if err != nil {
		return nil
	}
	b, err := r.sec.OpenShared(cacheTreeAAD, sealed)
	if err != nil {
		return nil
	}
	var rec parentRecord
	if json.Unmarshal(b, &rec) != nil {
		return nil
	}
	id, err1 := ParseID(rec.ID)
	t, err2 := ParseID(rec.Tree)
	if err1 != nil || err2 != nil {
		return nil
	}
	ts, _ := time.Parse(time.RFC3339Nano, rec.Time)
	if len(rec.Trees) > 0 {
		r.treesMu.Lock()
		if r.sessionTrees == nil {
			r.sessionTrees = map[ID][]byte{}
		}
		for _, t := range rec.Trees {
			r.sessionTrees[r.sec.BlobID(t)] = t
		}
		r.treesMu.Unlock()
	}
	return &Snapshot{ID: id, Tree: t, Time: ts, Hostname: host, Paths: paths}
}

// RememberCopy records in the local cache that the snapshot whose original
// is src has been copied into this repository (a write-only key cannot
// read the copies' Original fields to know it).
func (r *Repository) RememberCopy(src ID) {
	c := r.cache
	if c == nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(c.dir, "copied"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	_, _ = f.WriteString(Hex(src) + "\n")
	_ = f.Close()
}

// CopiedBefore returns the originals RememberCopy recorded (a new map).
func (r *Repository) CopiedBefore() map[ID]bool {
	out := map[ID]bool{}
	if r.cache == nil {
		return out
	}
	b, err := os.ReadFile(filepath.Join(r.cache.dir, "copied"))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if id, err := ParseID(line); err == nil {
			out[id] = true
		}
	}
	return out
}
