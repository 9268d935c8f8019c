package checker

// Snapshots and the trees reachable from them.

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

// checkSnapshots loads every snapshot and walks its trees.
func (c *checker) checkSnapshots(ctx context.Context) {
	names := sortedNames(c.listed[backend.SnapshotFile])
	c.rep.Stats.Snapshots = len(names)
	c.prog.start("snapshots", len(names))
	snaps := make([]*repo.Snapshot, len(names))
	c.parallel(ctx, len(names), func(i int) {
		defer c.prog.Done.Add(1)
		id, _ := repo.ParseID(names[i])
		obj := object(backend.SnapshotFile, id)
		if !c.r.CanRead() {
			data, err := c.be.Load(ctx, backend.Handle{Type: backend.SnapshotFile, Name: names[i]}, 0, 0)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					c.errorf(obj, "cannot read: %v", err)
				}
			case hexSum(data) != names[i]:
				c.errorf(obj, "content does not match its name (corrupted)")
			}
			return
		}
		s, err := c.r.LoadSnapshot(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				c.errorf(obj, "%s", trimObject(err, obj))
			}
			return
		}
		snaps[i] = s
	})
	if !c.r.CanRead() {
		return
	}
	c.walkTrees(ctx, snaps)
}

// treeJob is a tree to load, with the first snapshot and path that reach
// it (for messages).
type treeJob struct {
	id   repo.ID
	snap repo.ID
	path string
	kids []treeJob // subtrees found in it
}

// walkTrees loads every tree reachable from snaps, breadth first, each
// tree once, a level at a time on the check's workers.
func (c *checker) walkTrees(ctx context.Context, snaps []*repo.Snapshot) {
	seen := map[repo.ID]bool{}
	var level []treeJob
	for _, s := range snaps {
		if s != nil && !seen[s.Tree] {
			seen[s.Tree] = true
			level = append(level, treeJob{id: s.Tree, snap: s.ID, path: "/"})
		}
	}
	c.prog.start("trees", len(level))
	var loaded int
	for len(level) > 0 && ctx.Err() == nil {
		ok := make([]bool, len(level))
		c.parallel(ctx, len(level), func(i int) {
			ok[i] = c.checkTree(ctx, &level[i])
			c.prog.Done.Add(1)
		})
		var next []treeJob
		for i := range level {
			if ok[i] {
				loaded++
			}
			for _, k := range level[i].kids {
				if !seen[k.id] {
					seen[k.id] = true
					next = append(next, k)
				}
			}
		}
		c.prog.Total.Add(int64(len(next)))
		level = next
	}
	c.rep.Stats.Trees = loaded
}

// checkTree loads one tree, checks its files' chunks and collects its
// subtrees in j.kids. It reports whether the tree loaded.
func (c *checker) checkTree(ctx context.Context, j *treeJob) bool {
	obj := object(backend.SnapshotFile, j.snap)
	t, err := c.loadTree(ctx, j.id)
	if err != nil {
		if ctx.Err() == nil {
			c.errorf(obj, "%q: tree %s: %v", j.path, repo.Short(j.id), err)
		}
		return false
	}
	for _, n := range t.Nodes {
		p := joinPath(j.path, n.Name)
		switch n.Type {
		case tree.TypeDir:
			if n.Subtree != nil {
				j.kids = append(j.kids, treeJob{id: repo.ID(*n.Subtree), snap: j.snap, path: p})
			}
		case tree.TypeFile:
			c.checkContent(obj, p, n.Content)
		}
	}
	return true
}

// checkContent reports a file whose chunks are not all available.
func (c *checker) checkContent(obj, path string, content []tree.ContentRef) {
	chunks, missing, first := 0, 0, ""
	for _, ref := range content {
		if ref.IsHole() {
			continue
		}
		if why := c.unavailable(index.DataBlob, repo.ID(ref.ID)); why != "" {
			if missing == 0 {
				first = fmt.Sprintf("chunk %d %s: %s", chunks, repo.Short(repo.ID(ref.ID)), why)
			}
			missing++
		}
		chunks++
	}
	if missing > 0 {
		c.errorf(obj, "%q: %d of %d chunks unavailable (first: %s)", path, missing, chunks, first)
	}
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// locations returns the packs that hold a blob, the merged index's choice
// first.
func (c *checker) locations(t uint8, id repo.ID) []index.Location {
	loc, ok := c.idx.Lookup(t, id)
	if !ok {
		return nil
	}
	locs := []index.Location{loc}
	for _, pid := range c.dups[blobKey{id, t}] {
		for _, e := range c.packs[pid].blobs {
			if e.ID == id && e.Type == t {
				locs = append(locs, index.Location{Pack: pid, Type: t, Flags: e.Flags, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength})
				break
			}
		}
	}
	return locs
}

// unavailable says why no copy of a blob can be read, or "" when one can
// (as far as the check knows: without ReadData a pack that exists is
// assumed readable).
func (c *checker) unavailable(t uint8, id repo.ID) string {
	locs := c.locations(t, id)
	if len(locs) == 0 {
		c.notIndexed.Store(true)
		return "not in the index"
	}
	why := ""
	for _, loc := range locs {
		if r := c.packProblem(t, id, loc.Pack); r != "" {
			why = r
			continue
		}
		return ""
	}
	return why
}

// packProblem says why blob id cannot be read from pack, or "".
func (c *checker) packProblem(t uint8, id, pack repo.ID) string {
	p := c.packs[pack]
	name := object(backend.PackFile, pack)
	switch {
	case p.size < 0:
		return "its pack " + name + " is missing"
	case p.bad:
		return "its pack " + name + " is unreadable"
	}
	c.mu.Lock()
	bad := c.badBlobs[badBlob{blobKey{id, t}, pack}]
	c.mu.Unlock()
	if bad {
		return "damaged in " + name
	}
	return ""
}

// loadTree reads a tree blob from the repository (not the local cache),
// trying every copy.
func (c *checker) loadTree(ctx context.Context, id repo.ID) (*tree.Tree, error) {
	locs := c.locations(index.TreeBlob, id)
	if len(locs) == 0 {
		c.notIndexed.Store(true)
		return nil, errors.New("not in the index")
	}
	var err error
	for _, loc := range locs {
		if why := c.packProblem(index.TreeBlob, id, loc.Pack); why != "" {
			err = errors.New(why)
			continue
		}
		var t *tree.Tree
		if t, err = c.readTree(ctx, loc, id); err == nil {
			return t, nil
		}
	}
	return nil, err
}

func (c *checker) readTree(ctx context.Context, loc index.Location, id repo.ID) (*tree.Tree, error) {
	aead, err := c.r.PackAEAD(ctx, loc.Pack)
	if err != nil {
		return nil, err
	}
	stored, err := c.be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: repo.Hex(loc.Pack)}, int64(loc.Offset), int(loc.Length))
	if err != nil {
		return nil, err
	}
	plain, err := c.r.OpenBlob(aead, loc, id, stored, nil)
	if err != nil {
		return nil, err
	}
	return tree.Decode(plain)
}
