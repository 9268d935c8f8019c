package repo

import (
	"context"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

const cacheTreeAAD = "bulwark cache tree v1"

// SaveTree encodes and stores a tree blob (deduplicated like any blob) and
// keeps a copy in the local cache.
func (r *Repository) SaveTree(ctx context.Context, t *tree.Tree) (ID, error) {
	data, err := t.Encode()
	if err != nil {
		return ID{}, err
	}
	id, _, err := r.SaveBlob(ctx, TreeBlob, data)
	if err != nil {
		return ID{}, err
	}
	if !r.CanRead() {
		// A write-only key cannot read trees back from the repository:
		// keep them for RememberParent, which stores them in the cache.
		r.treesMu.Lock()
		if r.sessionTrees == nil {
			r.sessionTrees = map[ID][]byte{}
		}
		r.sessionTrees[id] = data
		if r.savedTrees == nil {
			r.savedTrees = map[ID]bool{}
		}
		r.savedTrees[id] = true
		r.treesMu.Unlock()
	}
	return id, nil
}

// KeepTree reports whether a new snapshot may refer to the stored tree id
// as it is, without encoding and saving it again: the archiver calls it for
// a directory whose entries are all equal to its parent snapshot's, which
// is then that snapshot's tree. True when the index lists the tree; for a
// write-only key the tree must also be one this session holds (from its
// cache), and it is then kept in the cache for the next backup as if
// written now.
func (r *Repository) KeepTree(id ID) bool {
	if !r.idx.Has(TreeBlob, id) {
		return false
	}
	if r.CanRead() {
		return true
	}
	r.treesMu.Lock()
	defer r.treesMu.Unlock()
	if _, ok := r.sessionTrees[id]; !ok {
		return false
	}
	if r.savedTrees == nil {
		r.savedTrees = map[ID]bool{}
	}
	r.savedTrees[id] = true
	return true
}

// LoadTree reads a tree from the local cache or the repository. A
// write-only key can only read trees it wrote itself (from its cache).
func (r *Repository) LoadTree(ctx context.Context, id ID) (*tree.Tree, error) {
	r.treesMu.Lock()
	data, ok := r.sessionTrees[id]
	r.treesMu.Unlock()
	if ok && r.sec.BlobID(data) == id {
		if t, err := tree.Decode(data); err == nil {
			return t, nil
		}
	}
	if !r.CanRead() {
		return nil, fmt.Errorf("tree %s: not in the local cache: %w", Short(id), crypto.ErrWriteOnly)
	}
	data, err := r.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		return nil, err
	}
	t, err := tree.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", Short(id), err)
	}
	return t, nil
}
