package repair

// Step 3 (snapshots). See the package documentation for the rule of what
// a salvaged snapshot keeps.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

// treeRes is what walking one tree found. Results are shared by every
// place the tree appears, so paths are relative to the tree.
type treeRes struct {
	missing bool      // the tree itself is lost
	changed bool      // something below is lost; id is the new tree
	id      repo.ID   // the new tree
	files   []string  // lost paths below, relative ("f", "d/", "d/f")
	chunks  []repo.ID // missing chunks below (may repeat)
	trees   []repo.ID // missing trees below (may repeat)
}

var intact = &treeRes{}

// pendingSnap is a salvaged snapshot to save after the index.
type pendingSnap struct {
	orig    *repo.Snapshot
	snap    *repo.Snapshot // nil when already salvaged
	already repo.ID
	rec     int // index in rep.Snapshots.Salvaged
}

// snapshots reads every snapshot (correcting single flipped bits), walks
// their trees against the rebuilt index and prepares salvaged copies of
// those that lost data. New trees go into new packs; the snapshots
// themselves are saved by saveSalvage, after the index.
func (rp *repairer) snapshots(ctx context.Context) error {
	rp.prog.Phase.Store(int32(PhaseSnapshots))
	ids, _, err := rp.r.SnapshotIDs(ctx)
	if err != nil {
		return fmt.Errorf("listing snapshots: %w", err)
	}
	rp.prog.TotalSnapshots.Store(int64(len(ids)))
	sr := &rp.rep.Snapshots
	var good []*repo.Snapshot
	for _, id := range ids {
		s, err := rp.readSnapshot(ctx, id)
		if err != nil {
			return err
		}
		if s != nil {
			good = append(good, s)
		}
	}
	sort.Slice(sr.Unreadable, func(i, j int) bool { return sr.Unreadable[i].ID < sr.Unreadable[j].ID })
	rp.rep.Lost.Unreadable = len(sr.Unreadable)
	repo.SortSnapshots(good)
	salvagedAs := map[string]repo.ID{} // original id -> a snapshot that replaced it
	for _, s := range good {
		if s.Original != "" {
			salvagedAs[s.Original] = s.ID
		}
	}
	for _, s := range good {
		if err := ctx.Err(); err != nil {
			return err
		}
		sr.Checked++
		rp.prog.Snapshots.Add(1)
		res, err := rp.walk(ctx, s.Tree)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", repo.Short(s.ID), err)
		}
		if !res.missing && !res.changed {
			sr.Intact++
			continue
		}
		root := res.id
		chunks, trees := map[repo.ID]bool{}, map[repo.ID]bool{}
		var files []string
		if res.missing {
			if root, err = rp.emptyTree(ctx); err != nil {
				return err
			}
			files = []string{"/"}
			trees[s.Tree] = true
		} else {
			for _, f := range res.files {
				files = append(files, "/"+f)
			}
			for _, c := range res.chunks {
				chunks[c] = true
			}
			for _, t := range res.trees {
				trees[t] = true
			}
		}
		sort.Strings(files)
		lost := repo.Lost{Chunks: len(chunks), Trees: len(trees), Files: files}
		rec := Salvaged{Original: repo.Hex(s.ID), Time: s.Time, Host: s.Hostname, Paths: s.Paths, Lost: lost}
		rp.rep.Lost.Snapshots++
		rp.rep.Lost.Files += len(files)
		rp.rep.Lost.Chunks += lost.Chunks
		rp.rep.Lost.Trees += lost.Trees
		rp.prog.SnapshotsSalvaged.Add(1)
		rp.prog.FilesLost.Add(int64(len(files)))
		p := pendingSnap{orig: s, rec: len(sr.Salvaged)}
		if by, ok := salvagedAs[repo.Hex(s.ID)]; ok {
			rec.AlreadyBy = repo.Hex(by)
			p.already = by
		} else {
			ns := *s
			ns.ID = repo.ID{}
			ns.Tree = root
			ns.Original = repo.Hex(s.ID)
			ns.Lost = mergeLost(s.Lost, lost)
			p.snap = &ns
		}
		sr.Salvaged = append(sr.Salvaged, rec)
		rp.pending = append(rp.pending, p)
	}
	return nil
}

// mergeLost adds an earlier salvage's losses to this one's.
func mergeLost(old *repo.Lost, now repo.Lost) *repo.Lost {
	out := now
	out.Files = append([]string(nil), now.Files...)
	if old != nil {
		out.Chunks += old.Chunks
		out.Trees += old.Trees
		seen := map[string]bool{}
		for _, f := range out.Files {
			seen[f] = true
		}
		for _, f := range old.Files {
			if !seen[f] {
				out.Files = append(out.Files, f)
			}
		}
		sort.Strings(out.Files)
	}
	return &out
}

// readSnapshot loads and decodes one snapshot file, correcting a single
// flipped bit. Unreadable snapshots are reported and return nil.
func (rp *repairer) readSnapshot(ctx context.Context, id repo.ID) (*repo.Snapshot, error) {
	sr := &rp.rep.Snapshots
	h := backend.Handle{Type: backend.SnapshotFile, Name: repo.Hex(id)}
	data, err := rp.be.Load(ctx, h, 0, 0)
	if errors.Is(err, backend.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(data) != id {
		fixed, ok := FixBitFlip(data, id)
		if !ok {
			sr.Unreadable = append(sr.Unreadable, FileError{repo.Hex(id), "content does not match its name, and no single flipped bit explains it"})
			return nil, nil
		}
		if !rp.o.DryRun {
			if err := rp.be.Replace(ctx, h, fixed); err != nil {
				if !errors.Is(err, backend.ErrForbidden) {
					return nil, err
				}
				rp.warn("%s: a flipped bit found, but the backend refuses to write it back: %v", h, err)
			}
		}
		sr.Fixed = append(sr.Fixed, repo.Hex(id))
		rp.prog.SnapshotsFixed.Add(1)
		data = fixed
	}
	s, err := rp.r.OpenSnapshot(id, data)
	if err != nil {
		sr.Unreadable = append(sr.Unreadable, FileError{repo.Hex(id), err.Error()})
		return nil, nil
	}
	return s, nil
}

// walk checks the tree id and everything below it against the rebuilt
// index and writes changed trees. The error is for failures to read
// storage, not for lost data.
func (rp *repairer) walk(ctx context.Context, id repo.ID) (*treeRes, error) {
	if res, ok := rp.memo[id]; ok {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := rp.loadTree(ctx, id)
	if err != nil {
		return nil, err
	}
	if t == nil {
		res := &treeRes{missing: true, trees: []repo.ID{id}}
		rp.memo[id] = res
		return res, nil
	}
	res := &treeRes{}
	nodes := make([]tree.Node, 0, len(t.Nodes))
	for _, n := range t.Nodes {
		switch {
		case n.Type == tree.TypeFile:
			var miss []repo.ID
			for _, c := range n.Content {
				if !c.IsHole() && !rp.has(repo.DataBlob, repo.ID(c.ID)) {
					miss = append(miss, repo.ID(c.ID))
				}
			}
			if len(miss) > 0 {
				res.changed = true
				res.files = append(res.files, n.Name)
				res.chunks = append(res.chunks, miss...)
				continue // the file is dropped
			}
		case n.Type == tree.TypeDir && n.Subtree != nil:
			sub, err := rp.walk(ctx, repo.ID(*n.Subtree))
			if err != nil {
				return nil, err
			}
			switch {
			case sub.missing:
				empty, err := rp.emptyTree(ctx)
				if err != nil {
					return nil, err
				}
				st := tree.ID(empty)
				n.Subtree = &st
				res.changed = true
				res.files = append(res.files, n.Name+"/")
				res.trees = append(res.trees, sub.trees...)
			case sub.changed:
				st := tree.ID(sub.id)
				n.Subtree = &st
				res.changed = true
				for _, f := range sub.files {
					res.files = append(res.files, n.Name+"/"+f)
				}
				res.chunks = append(res.chunks, sub.chunks...)
				res.trees = append(res.trees, sub.trees...)
			}
		}
		nodes = append(nodes, n)
	}
	if !res.changed {
		rp.memo[id] = intact
		return intact, nil
	}
	if res.id, err = rp.saveTree(ctx, &tree.Tree{Nodes: nodes}); err != nil {
		return nil, err
	}
	rp.memo[id] = res
	return res, nil
}

// loadTree reads a tree through the rebuilt index (or from the salvaged
// blobs). It returns nil, nil when the tree is lost: not in the index, or
// its blob does not decrypt, match its id or decode.
func (rp *repairer) loadTree(ctx context.Context, id repo.ID) (*tree.Tree, error) {
	data, ok := rp.trees[id]
	if !ok {
		loc, found := rp.idx.Lookup(repo.TreeBlob, id)
		if !found {
			return nil, nil
		}
		aead, err := rp.r.PackAEAD(ctx, loc.Pack)
		if err != nil {
			return nil, err
		}
		stored, err := rp.be.Load(ctx, packHandle(loc.Pack), int64(loc.Offset), int(loc.Length))
		if err != nil {
			return nil, err
		}
		if data, err = rp.r.OpenBlob(aead, loc, id, stored, nil); err != nil {
			return nil, nil
		}
	}
	t, err := tree.Decode(data)
	if err != nil {
		return nil, nil
	}
	return t, nil
}

// saveTree stores a tree unless the rebuilt repository has it.
func (rp *repairer) saveTree(ctx context.Context, t *tree.Tree) (repo.ID, error) {
	data, err := t.Encode()
	if err != nil {
		return repo.ID{}, err
	}
	id := repo.ID(rp.r.Secrets().BlobID(data))
	if rp.has(repo.TreeBlob, id) {
		return id, nil
	}
	if !rp.o.DryRun {
		if err := rp.r.SaveBlobCopy(ctx, repo.TreeBlob, id, data); err != nil {
			return repo.ID{}, fmt.Errorf("saving tree: %w", err)
		}
	}
	rp.salvaged[blobKey{repo.TreeBlob, id}] = true
	rp.trees[id] = data
	rp.rep.Snapshots.TreesWritten++
	return id, nil
}

// emptyTree returns the id of the empty tree, storing it when needed.
func (rp *repairer) emptyTree(ctx context.Context) (repo.ID, error) {
	if rp.empty == nil {
		id, err := rp.saveTree(ctx, &tree.Tree{})
		if err != nil {
			return id, err
		}
		rp.empty = &id
	}
	return *rp.empty, nil
}

// saveSalvage saves the salvaged snapshots (after the index that lists
// their trees), removes the damaged originals when asked, and then the
// old index files.
func (rp *repairer) saveSalvage(ctx context.Context) error {
	sr := &rp.rep.Snapshots
	for _, p := range rp.pending {
		if p.snap != nil && !rp.o.DryRun {
			id, err := rp.r.SaveSnapshot(ctx, p.snap)
			if err != nil {
				return fmt.Errorf("saving the salvaged copy of snapshot %s: %w", repo.Short(p.orig.ID), err)
			}
			sr.Salvaged[p.rec].New = repo.Hex(id)
		}
		if !rp.o.Forget {
			continue
		}
		if !rp.o.DryRun {
			if err := rp.r.RemoveSnapshot(ctx, p.orig.ID); err != nil && !errors.Is(err, backend.ErrNotExist) {
				rp.warn("removing damaged snapshot %s: %v", repo.Short(p.orig.ID), err)
				continue
			}
		}
		sr.Removed = append(sr.Removed, repo.Hex(p.orig.ID))
	}
	for _, name := range rp.remove {
		if !rp.o.DryRun {
			err := rp.be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: repo.Hex(name)})
			if err != nil && !errors.Is(err, backend.ErrNotExist) {
				rp.warn("removing superseded index file %s: %v", repo.Hex(name), err)
				continue
			}
		}
		rp.rep.Index.Removed = append(rp.rep.Index.Removed, repo.Hex(name))
	}
	return nil
}
